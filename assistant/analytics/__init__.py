"""Figures and data read from the log: metrics (and Prometheus) and training-data export."""
