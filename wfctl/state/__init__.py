"""Durable run state: the SQLite store, the journal writer, its replay and the per-run lock.

Below the engine: it knows events and records, never the engine.
"""
