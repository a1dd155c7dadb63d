"""Every side effect of a release: probes, contract tests, metric queries, flags, audit, notices."""
