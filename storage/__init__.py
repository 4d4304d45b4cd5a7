"""The read-side SQL stores (SQLite and PostgreSQL) every layer above the events may use."""
