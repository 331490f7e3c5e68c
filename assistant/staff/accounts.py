"""Who may use the agent and admin pages, and which tools may call the suggestions API.

Accounts live in the settings (`[[users]]` in assistant.toml, or the
`ASSISTANT_USERS` environment variable as JSON), each with an argon2id password
hash; `assistant add-user` makes the entry. API keys are kept as SHA-256
digests (`[[api_keys]]`, made by `assistant add-api-key`): a key is a long random
string, so a fast digest compared in constant time is as safe as a slow hash,
and each API request does not pay for argon2. No password or key is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from assistant.core.errors import ConfigError
from assistant.core.settings import ApiKey, Settings, UserAccount

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = ("agent", "admin")
MIN_PASSWORD_CHARS = 8
API_KEY_PREFIX = "pp_"


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's recommended cost


@cache
def _decoy_hash() -> str:
    """Checked for unknown names, so a sign-in takes as long whether or not the name exists."""
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(settings: Settings, name: str, password: str) -> UserAccount | None:
    """The configured account for `name` if `password` is right, else None."""
    user = next((u for u in settings.access.users if u.name == name), None)
    valid = verify_password(user.password_hash if user else _decoy_hash(), password)
    return user if user is not None and valid else None


def allowed(user: UserAccount, role: Role) -> bool:
    """Admins may do everything agents may."""
    return user.role == "admin" or user.role == role


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_api_key(settings: Settings, key: str | None) -> ApiKey | None:
    """The configured key matching `key`, compared in constant time; None if none does."""
    if not key:
        return None
    digest = hash_api_key(key)
    match = None
    for entry in settings.access.api_keys:  # no early exit: the time does not say which key matched
        if hmac.compare_digest(entry.sha256, digest):
            match = entry
    return match


def user_entry(name: str, role: Role, password: str) -> str:
    """The `[[users]]` TOML block for a new account (validated, password hashed)."""
    user = UserAccount(name=name, role=role, password_hash=hash_password(password))
    return (
        f'[[users]]\nname = "{user.name}"\nrole = "{user.role}"\n'
        f'password_hash = "{user.password_hash}"\n'
    )


def api_key_entry(name: str, key: str) -> str:
    """The `[[api_keys]]` TOML block for a key (only its digest)."""
    entry = ApiKey(name=name, sha256=hash_api_key(key))
    return f'[[api_keys]]\nname = "{entry.name}"\nsha256 = "{entry.sha256}"\n'
