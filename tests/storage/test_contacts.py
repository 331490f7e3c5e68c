import os
import stat

from assistant.storage.contacts import KEY_FILE, ContactVault
from assistant.storage.store import ConversationStore


def test_a_left_address_is_encrypted_at_rest_and_readable_for_agents(tmp_path):
    database = tmp_path / "log.db"
    store = ConversationStore(database)
    conversation = store.start_conversation()
    store.save_contact(conversation, "dana.lee@example.org")
    assert store.conversation(conversation).contact == "dana.lee@example.org"
    store.close()
    for path in tmp_path.glob("log.db*"):
        assert b"dana.lee" not in path.read_bytes()
    key = tmp_path / KEY_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_with_another_key_an_address_cannot_be_read_and_nothing_breaks(tmp_path):
    store = ConversationStore(tmp_path / "log.db")
    conversation = store.start_conversation()
    store.save_contact(conversation, "dana.lee@example.org")
    (tmp_path / KEY_FILE).unlink()
    other = ConversationStore(tmp_path / "log.db")
    assert other.conversation(conversation).contact is None
    assert not (tmp_path / KEY_FILE).exists()  # reading never makes a key


def test_no_key_is_made_until_an_address_is_left(tmp_path):
    ConversationStore(tmp_path / "log.db").start_conversation()
    assert not (tmp_path / KEY_FILE).exists()
    assert ContactVault.beside(tmp_path / "log.db").open(None) is None
