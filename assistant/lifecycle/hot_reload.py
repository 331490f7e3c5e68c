"""Switching a running server to newly promoted model versions, without a restart.

A thread reads the release pointer (`models/LIVE.json`, one small file) every few
seconds. A promotion or rollback replaces that file in one atomic rename, so any
content read is a whole release: when it changes and names other versions than
those serving, and every part's folder is there, the assistant loads the new set
beside the old one and swaps it in; replies under way finish on the set they
started with. A set that fails to load is logged once and not retried until the
pointer changes again, and the serving models stay.
"""

from __future__ import annotations

import logging
import threading

from assistant.core.errors import ArtifactError
from assistant.core.pipeline import Assistant
from assistant.lifecycle.releases import ModelVersions, live_path, live_versions, missing_parts

log = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, assistant: Assistant, interval_s: float) -> None:
        self.assistant = assistant
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: bytes | None = None

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
        """One look at the pointer; True when it switched to new versions."""
        settings = self.assistant.settings
        try:
            pointer = live_path(settings).read_bytes()
        except OSError:
            return False  # not written yet: the models serving came from elsewhere
        if pointer == self._seen:
            return False
        self._seen = pointer
        try:
            live = live_versions(settings)
        except ArtifactError as error:
            log.warning("not switching models: %s", error)
            return False
        if live == self.assistant.models.versions:
            return False
        missing = missing_parts(settings, live)
        if missing:
            log.error("not switching to %s: %s missing", live.describe(), ", ".join(missing))
            return False
        return self._switch(live)

    def _switch(self, live: ModelVersions) -> bool:
        try:
            switched = self.assistant.switch_to(live)
        except (ArtifactError, OSError, ValueError) as error:
            log.error("cannot switch to %s; still serving the previous models: %s", live, error)
            return False
        if switched:
            log.warning("now serving %s", live.describe())
        return switched
