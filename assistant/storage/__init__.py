"""The conversation log behind its seams (SQLite by default): what the pipeline writes, what
the agent desk does, what analytics and export read.
"""
