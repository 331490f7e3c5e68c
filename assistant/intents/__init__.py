"""The BERT intent classifier: the network, training, calibration, the fallback, hyperparameter
search and serving.
"""
