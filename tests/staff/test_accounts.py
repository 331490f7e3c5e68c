import pytest
from pydantic import ValidationError

from assistant.core.settings import ApiKey, Settings, UserAccount, load_settings
from assistant.staff.accounts import (
    allowed,
    api_key_entry,
    authenticate,
    check_api_key,
    hash_api_key,
    hash_password,
    new_api_key,
    user_entry,
    verify_password,
)


def test_passwords_are_hashed_with_argon2_and_verified():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password("not a hash", "correct horse")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_sign_in_checks_name_and_password_and_roles():
    settings = Settings(
        users=[
            UserAccount(name="ana", role="agent", password_hash=hash_password("ana's secret")),
            UserAccount(name="root", role="admin", password_hash=hash_password("root secret")),
        ]
    )
    ana = authenticate(settings, "ana", "ana's secret")
    assert ana is not None and ana.role == "agent"
    assert authenticate(settings, "ana", "root secret") is None
    assert authenticate(settings, "nobody", "ana's secret") is None
    assert allowed(ana, "agent") and not allowed(ana, "admin")
    root = authenticate(settings, "root", "root secret")
    assert allowed(root, "agent") and allowed(root, "admin")


def test_a_plain_text_password_in_the_settings_is_refused():
    with pytest.raises(ValidationError, match="argon2"):
        UserAccount(name="ana", role="agent", password_hash="hunter22")
    with pytest.raises(ValidationError):
        UserAccount(name='ana"\nrole = "admin', role="agent", password_hash=hash_password("x" * 8))


def test_api_keys_are_kept_as_digests_and_checked():
    key = new_api_key()
    assert key.startswith("pp_") and len(key) > 40
    settings = Settings(api_keys=[ApiKey(name="helpdesk", sha256=hash_api_key(key))])
    assert check_api_key(settings, key).name == "helpdesk"
    assert check_api_key(settings, key + "x") is None
    assert check_api_key(settings, None) is None
    assert check_api_key(Settings(), key) is None


def test_printed_entries_load_as_settings(tmp_path):
    key = new_api_key()
    config = tmp_path / "assistant.toml"
    config.write_text(
        user_entry("ana", "agent", "ana's secret") + "\n" + api_key_entry("helpdesk", key)
    )
    settings = load_settings(config)
    assert authenticate(settings, "ana", "ana's secret").role == "agent"
    assert check_api_key(settings, key).name == "helpdesk"
    assert "ana's secret" not in config.read_text() and key not in config.read_text()
