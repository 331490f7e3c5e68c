"""Pebble & Pine customer-service assistant."""

import os

# Offline by default: models load from local folders or the bundled MiniLM package.
# Set HF_HUB_OFFLINE=0 to let model names resolve on a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

__version__ = "0.1.0"
