"""A module importing something that does not exist."""

import wfctl_no_such_dependency  # noqa: F401
