"""Read models built from the case events (ledger, 13710 board, scores)."""
