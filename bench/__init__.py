"""Benchmarks: scripts that start the product as in production and print figures (not tests)."""
