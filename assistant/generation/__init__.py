"""The GPT-2 answer writer: training, streaming generation and the grounding checks on what it
writes.
"""
