"""One error hierarchy: every error a user can cause is an AssistantError with its old base."""

from __future__ import annotations

import inspect

import assistant.core.errors as errors
from assistant.core.errors import AssistantError, UnknownConversation, UnknownTurn


def test_every_project_error_is_an_assistant_error():
    kinds = [
        k for _, k in inspect.getmembers(errors, inspect.isclass) if k.__module__ == errors.__name__
    ]
    assert len(kinds) > 8
    assert all(issubclass(kind, AssistantError) for kind in kinds)


def test_not_found_errors_read_as_sentences_and_still_are_key_errors():
    assert str(UnknownConversation("abc")) == "conversation abc is not in the conversation log"
    assert str(UnknownTurn(7)) == "turn 7 is not in the conversation log"
    assert issubclass(UnknownConversation, KeyError)


def test_no_module_defines_an_error_of_its_own():
    import pkgutil

    import assistant

    for info in pkgutil.walk_packages(assistant.__path__, "assistant."):
        if info.name.endswith("__main__"):
            continue  # running it is the command itself
        module = __import__(info.name, fromlist=["_"])
        own = [
            name
            for name, value in vars(module).items()
            if inspect.isclass(value)
            and issubclass(value, Exception)
            and value.__module__ == info.name
            and info.name != errors.__name__
        ]
        assert own == [], info.name
