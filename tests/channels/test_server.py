from assistant.channels.server import page_urls


def test_the_start_up_message_names_each_page(staffed):
    text = page_urls(staffed.settings, "http://127.0.0.1:7860")
    assert "Chat: http://127.0.0.1:7860/" in text
    assert "Agent page: http://127.0.0.1:7860/agent/" in text
    assert "Admin page: http://127.0.0.1:7860/admin/" in text


def test_without_accounts_it_says_how_to_add_one(assistant):
    text = page_urls(assistant.settings, "http://127.0.0.1:7860")
    assert "Agent and admin pages are off" in text
    assert "assistant add-user NAME --role agent" in text
