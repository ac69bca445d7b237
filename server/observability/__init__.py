"""Seeing what the system does: JSON logs without secrets, Prometheus metrics, startup checks."""
