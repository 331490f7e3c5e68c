"""Which class plays each role, by configuration, as Rasa's `TrackerStore.create` does.

The `[components]` settings section names a class per role, as `"module:Class"`
or as the name of an entry point in the group `pebble_assistant.<role>` (so an
installed plug-in package can offer its own). The registry builds every model
through here, at start-up and at each hot reload, so a configured class stays in
place when new versions are loaded.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings

ENTRY_POINT_GROUP = "pebble_assistant.{role}"


def component_class(role: str, reference: str) -> type:
    """The class `reference` names for `role`; raises `ConfigError` saying what is wrong."""
    if ":" in reference:
        module_name, _, class_name = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ConfigError(
                f"components.{role} = {reference!r}: cannot import {module_name!r} ({error})"
            ) from error
        found = getattr(module, class_name, None)
    else:
        group = ENTRY_POINT_GROUP.format(role=role)
        matches = [point for point in entry_points(group=group) if point.name == reference]
        found = matches[0].load() if matches else None
    if not isinstance(found, type):
        raise ConfigError(
            f"components.{role} = {reference!r} names no class; give it as 'module:Class' "
            f"or the name of an entry point in the group {ENTRY_POINT_GROUP.format(role=role)!r}"
        )
    if not callable(getattr(found, "from_settings", None)):
        raise ConfigError(
            f"components.{role}: {reference} has no from_settings(settings, version, previous)"
        )
    return found


def build_component(
    settings: Settings, role: str, version: str | None = None, previous: Any = None
) -> Any:
    """An instance of the class configured for `role`, loaded at `version` (None: live)."""
    reference = getattr(settings.components, role)
    return component_class(role, reference).from_settings(settings, version, previous)
