"""The format's one source of truth: the schemas, diagnostics and their codes."""
