"""Text handling shared by every concern: normalising incoming messages, PII redaction, the
shared patterns, identifiers and slots.
"""
