"""Launchers for real components the tests run against (Prometheus)."""
