"""The application service: load a case, let it decide, save, report the result."""
