"""The chat page in headless Chromium, as a customer uses it."""

import shutil
import socket
import sqlite3
import threading
import time

import pytest
import uvicorn

from assistant.api import create_app

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(eager):
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(eager), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(base_url):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        # A Gradio page never goes network-idle: wait for the DOM, then for elements.
        page.goto(base_url, wait_until="domcontentloaded")
        yield page
        browser.close()


def send(page, text: str, reply_contains: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")
    expect(page.locator("#chat")).to_contain_text(reply_contains, timeout=30_000)


def test_customer_chats_reads_why_and_gives_a_thumbs_down(page, eager):
    assistant = eager
    page.locator("#message textarea").wait_for(timeout=30_000)
    send(page, "Where is my order? It has not arrived yet.", "order number")
    send(page, "It's PP-482913", "order PP-482913")

    page.get_by_text("Why this answer").last.click()
    page.get_by_text("Route:").last.wait_for(timeout=10_000)

    page.locator("#chat button[aria-label='Dislike']").last.click()
    deadline = time.monotonic() + 15
    turns = []
    while time.monotonic() < deadline:
        turns = [
            turn
            for conversation in _recent_conversations(assistant)
            for turn in assistant.store.turns(conversation)
            if "PP-482913" in turn["user_text"]
        ]
        if turns and assistant.store.feedback(turns[-1]["id"]):
            break
        time.sleep(0.3)
    assert turns, "the turn was not logged"
    assert [f["rating"] for f in assistant.store.feedback(turns[-1]["id"])] == [-1]


def test_empty_message_shows_a_warning_and_sends_nothing(page):
    box = page.locator("#message textarea")
    box.wait_for(timeout=30_000)
    box.fill("   ")
    box.press("Enter")
    expect(page.get_by_text("The message is empty")).to_be_visible(timeout=10_000)
    expect(page.locator("#chat")).not_to_contain_text("Why this answer")


def _recent_conversations(assistant) -> list[str]:
    connection = sqlite3.connect(assistant.store.path)
    try:
        rows = connection.execute("SELECT id FROM conversations ORDER BY created_at DESC LIMIT 5")
        return [row[0] for row in rows.fetchall()]
    finally:
        connection.close()
