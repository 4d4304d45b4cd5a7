"""HTTP wiring: routers, dependencies, error mapping, request logging."""
