"""Observability: metrics (Prometheus, in registries the caller owns)."""
