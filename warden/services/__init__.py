"""The service layer the CLI, the HTTP API and the dashboard share: releases, flags, access,
governance and audit. Errors carry a kind (`services.errors`); each face maps kinds to its own
codes in one table."""
