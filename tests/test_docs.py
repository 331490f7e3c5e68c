"""README.md keeps up with the code: every command and every setting is documented."""

import argparse
import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from assistant.cli import build_parser
from assistant.core.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple]:
    """Every command and sub-command the parser defines, as word tuples: ("data", "validate")."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*path, name))
                found.extend(command_paths(sub, (*path, name)))
    return found


def documented_commands() -> list[tuple[str, ...]]:
    """The commands in the README's command table: rows that start with `assistant ...`."""
    rows = re.findall(r"^\| `assistant ([^`]*)`", README, re.MULTILINE)
    return [
        tuple(word for word in row.split() if re.fullmatch(r"[a-z][a-z0-9-]*", word))
        for row in rows
    ]


def sub_model(annotation: typing.Any) -> type[BaseModel] | None:
    """The pydantic model a settings section is annotated with (`Section` or `Section | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [sub_model(arg) for arg in typing.get_args(annotation)]
        return next((model for model in models if model is not None), None)
    return None


def setting_names(model: type[BaseModel]) -> list[str]:
    """Field names, with a section (a sub-model) replaced by its own fields' names."""
    names = []
    for name, field in model.model_fields.items():
        section = sub_model(field.annotation)
        names.extend(setting_names(section) if section else [name])
    return names


def is_documented(name: str) -> bool:
    """Named in backticks, set in a TOML example (`name = ...`), or a TOML table `[[name]]`."""
    quoted = re.escape(name)
    return bool(re.search(rf"`{quoted}`|^#? ?{quoted} = |\[\[{quoted}\]\]", README, re.MULTILINE))


def test_the_command_paths_are_found():
    paths = command_paths(build_parser())
    assert ("train",) in paths and ("data", "validate") in paths


@pytest.mark.parametrize("path", command_paths(build_parser()), ids=" ".join)
def test_every_command_is_in_the_readme_table(path):
    table = documented_commands()
    assert any(row[: len(path)] == path for row in table), (
        f"`assistant {' '.join(path)}` is missing from README.md's command table"
    )


def test_setting_names_walk_into_sections():
    class Section(BaseModel):
        inner: int = 1

    class Outer(BaseModel):
        plain: str = ""
        section: Section = Section()
        maybe: Section | None = None

    assert setting_names(Outer) == ["plain", "inner", "inner"]


@pytest.mark.parametrize("name", setting_names(Settings))
def test_every_setting_is_in_the_readme(name):
    assert is_documented(name), f"setting {name!r} is not documented in README.md"
