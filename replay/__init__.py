"""A case's history, its state at any moment, rebuilds and integrity checks."""
