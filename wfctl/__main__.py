"""`python -m wfctl`."""

from wfctl.cli import main

main()
