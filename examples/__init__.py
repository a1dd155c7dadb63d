"""Sample services that Release Warden releases run against (see docs/sample-service.md)."""
