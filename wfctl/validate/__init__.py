"""Schema and semantic checks of a loaded document; every problem a Diagnostic."""
