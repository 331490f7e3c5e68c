"""Model versions, resumable runs, releases, building what is missing, retraining and hot
reload.
"""
