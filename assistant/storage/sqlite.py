"""The SQLite conversation log, the default store: one class that plays every role of the log.

Two views of a conversation are kept. `turns` holds one row per customer message
with everything the bot decided (route, intent, trace); `messages` is the
transcript people read, customer, bot and agent lines in one sequence whose ids
only grow, so a chat page can ask for what is new since the last id it showed.
Each role (`assistant.core.seams.TurnLog`, `AgentDesk`, `LogReader`) is written in
its own module over the shared connection.
"""

from __future__ import annotations

from assistant.core.settings import Settings
from assistant.storage.agent_desk import SQLiteAgentDesk
from assistant.storage.log_reads import SQLiteLogReader
from assistant.storage.turn_log import SQLiteTurnLog
from assistant.text.redaction import Redactor


class ConversationStore(SQLiteTurnLog, SQLiteAgentDesk, SQLiteLogReader):
    """The log in one SQLite file (WAL mode), for the pipeline, the agent desk and analytics."""

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> ConversationStore:
        """The log at `database_path`, redacting all but the business's public contacts."""
        redact = Redactor(settings.public_contacts, settings.phone_regions)
        return cls(settings.database_path, redact)
