"""Settings every layer reads: chosen by environment (docs/reference-data.md, README)."""
