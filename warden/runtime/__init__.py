"""Running Release Warden: the Temporal client factory, the embedded dev server, the worker."""
