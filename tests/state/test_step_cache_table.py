"""The step cache's table in a real state file: ttl expiry on an injected clock, and
`read=False` (--no-cache) never reading."""

from __future__ import annotations

from pathlib import Path

from wfctl.state.cache import StepCacheTable, cache_digest
from wfctl.state.store import StateStore


def test_an_entry_older_than_its_ttl_misses(tmp_path: Path) -> None:
    now = [1000.0]
    table = StepCacheTable(StateStore(tmp_path), clock=lambda: now[0])
    table.record("d", "run-1", "build", {"stdout": "x"})
    now[0] += 59
    assert table.lookup("d", ttl=60) == ("run-1", {"stdout": "x"})
    now[0] += 2
    assert table.lookup("d", ttl=60) is None
    assert table.lookup("d", ttl=None) == ("run-1", {"stdout": "x"})


def test_no_cache_does_not_read_but_records(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    StepCacheTable(store, read=False).record("d", "run-1", "build", 1)
    assert StepCacheTable(store, read=False).lookup("d", None) is None
    assert StepCacheTable(store).lookup("d", None) == ("run-1", 1)


def test_the_digest_hides_the_rendered_key() -> None:
    digest = cache_digest("wf", "build", "def", "s3cr3t")
    assert "s3cr3t" not in digest and len(digest) == 64
    assert digest != cache_digest("wf", "build", "def2", "s3cr3t")
