"""The case aggregate, its events, rules and deadline policy: pure, no I/O."""
