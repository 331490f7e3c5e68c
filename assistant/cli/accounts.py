"""`assistant add-user` and `add-api-key`: config entries for the support team and tools."""

from __future__ import annotations

import argparse
import sys

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != password:
        raise ConfigError("the passwords differ; nothing was written")
    return password


def cmd_add_user(args: argparse.Namespace, settings: Settings) -> int:
    """Print a `[[users]]` entry for assistant.toml: the password only as its argon2 hash."""
    from assistant.staff.accounts import user_entry

    entry = user_entry(args.name, args.role, _read_password(args))
    if any(user.name == args.name for user in settings.users):
        print(f"note: {args.name} is already configured; replace that entry", file=sys.stderr)
    print(entry, end="")
    where = _config_name(args)
    print(f"Add the entry above to {where} to let {args.name} sign in.", file=sys.stderr)
    return 0


def cmd_add_api_key(args: argparse.Namespace, settings: Settings) -> int:
    """Make a new API key: the key is shown once, only its digest goes in the config."""
    from assistant.staff.accounts import api_key_entry, new_api_key

    key = new_api_key()
    print(api_key_entry(args.name, key), end="")
    print(
        f"API key for {args.name} (shown only now; send it as the X-API-Key header):\n{key}\n"
        f"Add the entry above to {_config_name(args)}.",
        file=sys.stderr,
    )
    return 0


def _config_name(args: argparse.Namespace) -> str:
    return str(args.config or "assistant.toml")
