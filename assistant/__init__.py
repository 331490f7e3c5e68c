"""Pebble & Pine customer-service assistant."""

import os

# Offline by default: models load from local folders or the bundled MiniLM package.
# Set HF_HUB_OFFLINE=0 to let model names resolve on a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue recomputes a pandas summary of its last 10,000 events after every event
# (15 ms each here once it holds 10,000), for a monitoring dashboard these pages leave
# off: every 1,000 events instead, over at most 1,000.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

__version__ = "0.1.0"
