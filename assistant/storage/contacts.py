"""Email addresses customers leave to be contacted on, encrypted at rest.

Everything else in the log is redacted: an address is masked wherever a customer
types it. The one they leave on purpose, when no one can take their conversation,
must reach an agent, so it is kept apart, encrypted with Fernet (AES-128-CBC and
HMAC-SHA256) under a key that lives beside the database (`contact.key`, readable by
its owner only) or in `ASSISTANT_CONTACT_KEY`, and decrypted only for the agent page.
A copy of the database alone does not reveal it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "contact.key"
KEY_VARIABLE = "ASSISTANT_CONTACT_KEY"


class ContactVault:
    """Seals and opens addresses; the key is read (or made) the first time one is needed."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    @classmethod
    def beside(cls, database: Path) -> ContactVault:
        return cls(database.parent / KEY_FILE)

    def _cipher(self, create: bool) -> Fernet | None:
        if self._fernet is None:
            given = os.environ.get(KEY_VARIABLE)
            if given:
                self._fernet = Fernet(given.encode())
            elif self.key_file.exists() or create:
                self._fernet = Fernet(self._read_or_make_key())
        return self._fernet

    def _read_or_make_key(self) -> bytes:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.key_file.read_bytes().strip()
        key = Fernet.generate_key()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return key

    def seal(self, email: str) -> str:
        cipher = self._cipher(create=True)
        assert cipher is not None
        return cipher.encrypt(email.encode()).decode("ascii")

    def open(self, token: str | None) -> str | None:
        """The address, or None when there is none or the key is not the one it was sealed
        with (the agent page then shows that an address was left but cannot be read)."""
        cipher = self._cipher(create=False) if token else None
        if cipher is None or not token:
            return None
        try:
            return cipher.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            return None
