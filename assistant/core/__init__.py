"""The shared core: the types every concern speaks (intent scores, sources, routes, decisions,
replies and reply events), the declared seams, errors, settings, the pipeline and its trace.
"""
