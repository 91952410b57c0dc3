"""A module whose import fails, for tests/test_actions_python.py."""

raise RuntimeError("this module is broken on purpose")
