"""The conversation log, one class that plays every role of the log, on SQLite or PostgreSQL.

Two views of a conversation are kept. `turns` holds one row per customer message
with everything the bot decided (route, intent, trace); `messages` is the
transcript people read, customer, bot and agent lines in one sequence whose ids
only grow, so a chat page can ask for what is new since the last id it showed.
Each role (`assistant.core.seams.TurnLog`, `AgentDesk`, `LogReader`,
`StaffSignIns`) is written in its own module over the shared connection.
"""

from __future__ import annotations

from assistant.core.settings import Settings
from assistant.storage.agent_desk import SqlAgentDesk
from assistant.storage.contacts import KEY_FILE
from assistant.storage.log_reads import SqlLogReader
from assistant.storage.staff_sign_ins import SqlStaffSignIns
from assistant.storage.turn_log import SqlTurnLog
from assistant.text.redaction import Redactor


class ConversationStore(SqlTurnLog, SqlAgentDesk, SqlLogReader, SqlStaffSignIns):
    """The log for the pipeline, the agent desk, analytics and the staff pages' sign-ins."""

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> ConversationStore:
        """The log at `database_url` (PostgreSQL) or else the SQLite file at `database_path`,
        redacting all but the business's public contacts."""
        redact = Redactor(settings.public_contacts, settings.phone_regions)
        location = settings.database_url or settings.database_path
        return cls(location, redact, contact_key=settings.database_path.parent / KEY_FILE)
