"""The install hint for an optional extra follows the tool that installed wfctl."""

from __future__ import annotations

import pytest

from wfctl.format.extras import install_hint


@pytest.mark.parametrize(
    ("prefix", "command"),
    [
        ("/home/a/.local/pipx/venvs/wfctl", "pipx install --force 'wfctl[agents]'"),
        ("/home/a/.local/share/uv/tools/wfctl", "uv tool install --force 'wfctl[agents]'"),
        ("/home/a/project/.venv", "pip install 'wfctl[agents]'"),
        ("/usr", "pip install 'wfctl[agents]'"),
    ],
)
def test_the_hint_names_the_installer(prefix: str, command: str) -> None:
    assert install_hint("agents", prefix) == command


def test_this_environment_gets_pip() -> None:
    """The test venv is a plain virtual environment, not a pipx or uv tool one."""
    assert install_hint("ray") == "pip install 'wfctl[ray]'"
