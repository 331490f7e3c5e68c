"""Measuring a model and writing its report."""
