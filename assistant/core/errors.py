"""The project's one error hierarchy.

`AssistantError` is an error a user can cause or fix, and its message says what
to do; the command line turns it, and only it, into a clean exit. Each kind keeps
the builtin base it had (`ValueError`, `KeyError`, ...) as a second base, so code
that catches those still works. Anything else that escapes is a bug.
"""

from __future__ import annotations

from pathlib import Path


class AssistantError(Exception):
    """An error a user can cause or fix; the text says what to do."""


class MessageError(AssistantError, ValueError):
    """A message the assistant refuses; the text says what the user can do."""


class DataError(AssistantError, ValueError):
    """A dataset problem, with the file and line where it was found."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class ConfigError(AssistantError, ValueError):
    """The settings or a command's arguments are wrong; the text says which and how."""


class MissingConfigFile(ConfigError, FileNotFoundError):
    """The configuration file named does not exist."""


class TrainingError(AssistantError, ValueError):
    """Training cannot start with this data: too little of it, or labels that do not match."""


class UnsupportedEncoder(TrainingError):
    """A sentence encoder that cannot be exported to ONNX (not a transformer with mean pooling)."""


class HardwareError(AssistantError, RuntimeError):
    """The configured device (a CUDA GPU, FAISS on the GPU) is not on this machine."""


class ArtifactError(AssistantError, RuntimeError):
    """A built model or index is missing, corrupt or mismatched; the text says how to rebuild."""


class StorageError(AssistantError, RuntimeError):
    """The conversation log's database cannot be reached, or holds what this program cannot use."""


class RollbackError(AssistantError, RuntimeError):
    """There is no earlier release to return to."""


class _NotFound(AssistantError, KeyError):
    def __str__(self) -> str:  # KeyError would print the id quoted, as a repr
        return f"{self.what} {self.args[0]} is not in the conversation log"

    what = "item"


class UnknownConversation(_NotFound):
    """The conversation id is not in the log."""

    what = "conversation"


class UnknownTurn(_NotFound):
    """The turn id is not in the log."""

    what = "turn"


class HeldByAnotherAgent(AssistantError, RuntimeError):
    """The conversation is with another agent: taking it over is a deliberate step (`take`)."""

    def __init__(self, conversation_id: str, holder: str) -> None:
        super().__init__(f"conversation {conversation_id} is with {holder}")
        self.holder = holder


class AccessDenied(AssistantError, PermissionError):
    """The request comes from no configured account with the role the page needs."""


class MissingApiKey(AssistantError):
    """No valid API key came with the request."""


class RateLimited(AssistantError):
    """A client sent more requests than its rate allows; it may retry after `retry_after` s."""

    def __init__(self, retry_after: int, what: str = "requests") -> None:
        super().__init__(f"Too many {what}; try again in {retry_after} s.")
        self.retry_after = retry_after


class ServerBusy(AssistantError):
    """Too many requests are already waiting; the client should try again shortly."""

    retry_after = 2


class RequestKeyReused(AssistantError, ValueError):
    """An idempotency key came back with another message or conversation than it first did."""


class RequestInFlight(AssistantError):
    """A request with this idempotency key is still being answered; retry shortly."""

    retry_after = 1


class RequestAnswered(AssistantError):
    """A turn with this idempotency key is logged already (by another server, say)."""
