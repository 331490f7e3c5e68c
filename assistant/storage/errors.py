"""What the log refuses: unknown conversations and turns, a conversation another agent has."""


class UnknownConversation(KeyError):
    """The conversation id is not in the log."""


class UnknownTurn(KeyError):
    """The turn id is not in the log."""


class HeldByAnotherAgent(RuntimeError):
    """The conversation is with another agent: taking it over is a deliberate step (`take`)."""

    def __init__(self, conversation_id: str, holder: str) -> None:
        super().__init__(f"conversation {conversation_id} is with {holder}")
        self.holder = holder
