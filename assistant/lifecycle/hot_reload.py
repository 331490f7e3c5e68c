"""Switching a running server to newly promoted model versions, without a restart.

A thread reads the `CURRENT` files every few seconds (three small files). When
they name other versions than those serving, and still name the same ones on
the next look (a promotion writes them one after another), the assistant loads
the new set beside the old one and swaps it in; replies under way finish on the
set they started with. A set that fails to load is logged once and not retried
until the files change again, and the serving models stay.
"""

from __future__ import annotations

import logging
import threading

from assistant.core.errors import ArtifactError
from assistant.core.pipeline import Assistant
from assistant.lifecycle.releases import ModelVersions, live_versions

log = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, assistant: Assistant, interval_s: float) -> None:
        self.assistant = assistant
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: ModelVersions | None = None
        self._failed: ModelVersions | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def check(self) -> bool:
        """One look at the `CURRENT` files; True when it switched to new versions."""
        try:
            live = live_versions(self.assistant.settings)
        except ArtifactError as error:
            log.warning("not switching models: %s", error)
            return False
        if live == self.assistant.models.versions or live == self._failed:
            self._pending = None
            return False
        if live != self._pending:
            self._pending = live  # switch on the next look if the files still say the same
            return False
        return self._switch(live)

    def _switch(self, live: ModelVersions) -> bool:
        try:
            switched = self.assistant.switch_to(live)
        except (ArtifactError, OSError, ValueError) as error:
            self._failed = live
            log.error("cannot switch to %s; still serving the previous models: %s", live, error)
            return False
        self._pending = None
        if switched:
            log.warning("now serving %s", live.describe())
        return switched
