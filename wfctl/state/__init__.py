"""The run journal on SQLite: store, journal, replay, per-run lock. No engine import."""
