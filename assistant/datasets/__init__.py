"""Loading and validating datasets (CSV / JSONL) and choosing which examples train, validate
and test.
"""
