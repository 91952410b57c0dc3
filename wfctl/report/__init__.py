"""The JSON execution report, JUnit, and the metrics/SLA collector."""
