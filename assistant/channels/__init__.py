"""The ways customers reach the assistant: the JSON API, the web chat and the terminal, each
consuming one reply stream.
"""
