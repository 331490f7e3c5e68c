"""Choosing how to answer: the router and its rules, answer templates, and reply suggestions
for agents.
"""
