"""Benchmark scenarios for bench/run.py (imported with bench/ on sys.path)."""
