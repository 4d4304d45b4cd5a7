"""The demo district: realistic cases through every path of the lifecycle."""
