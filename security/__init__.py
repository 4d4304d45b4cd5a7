"""Who is asking (tokens), what they may do (api/access.py) and personal data at rest (vault)."""
