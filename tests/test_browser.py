"""The pages in headless Chromium, as a customer and an agent use them."""

import json
import shutil
import time

import pytest

from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.records import ActionKind
from assistant.storage.store import ConversationStore
from tests.conftest import AGENT_NAME, AGENT_PASSWORD, running_server
from tests.pii_corpus import LeakFinder, load_planted_pii
from tests.postgres import log_for_test

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
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def served(staffed, tmp_path_factory):
    """The staffed assistant with a log of its own."""
    # A log of its own: the session's shared log holds other tests' handoffs, oldest first,
    # and this one's row would sit below what the queue table shows.
    log = ConversationStore(log_for_test(tmp_path_factory.mktemp("browser") / "conversations.db"))
    served = Assistant(
        staffed.settings,
        staffed.classifier,
        staffed.retriever,
        staffed.router.templates,
        log,
        staffed.generator,
    )
    return served


@pytest.fixture(scope="module")
def base_url(served):
    with running_server(create_app(served)) as url:
        yield url


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser, url: str):
    """A page in a context of its own (its own cookies), loaded far enough to use."""
    page = browser.new_context().new_page()
    # A Gradio page never goes network-idle: wait for the DOM, then for elements.
    page.goto(url, wait_until="domcontentloaded")
    return page


@pytest.fixture
def page(browser, base_url):
    return open_page(browser, base_url)


def submit(page, text: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


def send(page, text: str, reply_contains: str) -> None:
    submit(page, text)
    expect(page.locator("#chat")).to_contain_text(reply_contains, timeout=WAIT_MS)


def test_customer_chats_reads_why_and_gives_a_thumbs_down(page, served):
    assistant = served
    page.locator("#message textarea").wait_for(timeout=WAIT_MS)
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
    box.wait_for(timeout=WAIT_MS)
    box.fill("   ")
    box.press("Enter")
    expect(page.get_by_text("The message is empty")).to_be_visible(timeout=10_000)
    expect(page.locator("#chat")).not_to_contain_text("Why this answer")


def sign_in(page, name: str, password: str) -> None:
    page.locator("input[type=text]").fill(name)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()


def test_a_handoff_an_edited_suggestion_and_back_to_the_bot(browser, base_url, served):
    customer = open_page(browser, base_url)
    customer.locator("#message textarea").wait_for(timeout=WAIT_MS)
    request = "I want to talk to a person about parcel 5521"
    submit(customer, request)
    expect(customer.locator("#status")).to_contain_text("Waiting for", timeout=WAIT_MS)

    agent = open_page(browser, f"{base_url}/agent/")
    sign_in(agent, AGENT_NAME, AGENT_PASSWORD)
    expect(agent.locator("#who")).to_contain_text(f"Signed in as {AGENT_NAME}", timeout=WAIT_MS)
    # The table keeps a hidden copy of each cell for measuring; the visible one is clicked.
    agent.locator("#queue").get_by_text(request).filter(visible=True).first.click()
    expect(agent.locator("#conversation")).to_contain_text("waiting for an agent", timeout=WAIT_MS)
    expect(agent.locator("#history")).to_contain_text("intent human_agent", timeout=WAIT_MS)
    expect(agent.locator("#suggestion-1")).to_contain_text("route", timeout=WAIT_MS)

    agent.get_by_role("button", name="Use suggestion 1").click()
    reply_box = agent.locator("#reply textarea")
    expect(reply_box).not_to_have_value("", timeout=WAIT_MS)
    edited = reply_box.input_value() + " Ana will stay with you until it is sorted."
    reply_box.fill(edited)
    agent.locator("#send-reply").click()

    # The customer sends nothing: the page shows the reply by itself.
    chat = customer.locator("#chat")
    expect(chat).to_contain_text("Ana will stay with you until it is sorted.", timeout=WAIT_MS)
    expect(customer.locator("#status")).to_contain_text("is with you", timeout=WAIT_MS)

    agent.locator("#resolve").click()
    expect(customer.locator("#status")).to_contain_text("resolved", timeout=WAIT_MS)
    answers = customer.get_by_text("Why this answer")
    answered = answers.count()
    submit(customer, "how much is shipping")
    expect(answers).to_have_count(answered + 1, timeout=WAIT_MS)

    conversation = _conversation_with(served, request)
    kinds = [action["kind"] for action in served.store.actions(conversation)]
    assert kinds == [ActionKind.TAKEN, ActionKind.SUGGESTION_EDITED, ActionKind.RESOLVED]
    assert served.store.turns(conversation)[-1]["route"] != "agent"


def _recent_conversations(assistant) -> list[str]:
    started = assistant.store.conversation_facts()  # oldest first
    return [row["id"] for row in reversed(started[-5:])]


def _conversation_with(assistant, text: str) -> str:
    for conversation in _recent_conversations(assistant):
        if any(turn["user_text"] == text for turn in assistant.store.turns(conversation)):
            return conversation
    raise AssertionError(f"no recent conversation has {text!r}")


HOSTILE_PAGE = b"<!doctype html><title>A page an agent visits</title><p>Nothing to see.</p>"
HOSTILE_FETCHES = """async (base) => {
  const reply = JSON.stringify({data: ["hostile reply"], fn_index: 0, session_hash: "x"});
  const attempts = [
    [base + "/agent/config", {credentials: "include"}],
    [base + "/agent/gradio_api/queue/join", {method: "POST", credentials: "include",
      headers: {"content-type": "application/json"}, body: reply}],
    [base + "/admin/config", {credentials: "include"}],
  ];
  const out = [];
  for (const [url, init] of attempts) {
    try { const r = await fetch(url, init); out.push(r.status + " " + await r.text()); }
    catch (e) { out.push("failed"); }
  }
  await fetch(base + "/agent/gradio_api/queue/join",
              {method: "POST", mode: "no-cors", credentials: "include", body: reply});
  return out;
}"""


@pytest.fixture
def hostile_url():
    """A page of another origin: the same host, another port."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(HOSTILE_PAGE)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_another_sites_page_cannot_act_as_the_signed_in_agent(
    browser, base_url, hostile_url, served
):
    context = browser.new_context()
    agent = context.new_page()
    agent.goto(f"{base_url}/agent/", wait_until="domcontentloaded")
    sign_in(agent, AGENT_NAME, AGENT_PASSWORD)
    expect(agent.locator("#who")).to_contain_text(f"Signed in as {AGENT_NAME}", timeout=WAIT_MS)
    hostile = context.new_page()  # the same browser, so the agent's cookies go along
    hostile.goto(hostile_url, wait_until="domcontentloaded")
    results = hostile.evaluate(HOSTILE_FETCHES, base_url)
    assert results == ["failed", "failed", "failed"]
    conversations = _recent_conversations(served)
    replies = [t for c in conversations for t in served.store.turns(c) if t["route"] == "agent"]
    assert not any("hostile reply" in (t["reply_text"] or "") for t in replies)


BROWSER_STORAGE = """async () => {
  const lines = (store) => Object.keys(store).map((key) => key + "=" + store.getItem(key));
  const databases = indexedDB.databases ? await indexedDB.databases() : [];
  return {
    localStorage: lines(localStorage),
    sessionStorage: lines(sessionStorage),
    cookies: document.cookie,
    indexedDB: databases.map((database) => database.name),
  };
}"""
PLANTED_SENT = 6


def test_the_browser_keeps_no_planted_value_the_customer_typed(page, served):
    corpus = load_planted_pii()
    rows = corpus[:PLANTED_SENT]
    page.locator("#message textarea").wait_for(timeout=WAIT_MS)
    for row in rows:
        submit(page, row.message)
        _wait_for_turn_with(served, row.kept[0])
    stored = page.evaluate(BROWSER_STORAGE)
    stored["all cookies"] = page.context.cookies()
    finder = LeakFinder(corpus)
    leaks = [
        str(leak)
        for name, value in stored.items()
        for leak in finder.find(json.dumps(value, ensure_ascii=False), f"the browser's {name}")
    ]
    assert leaks == []
    # The values were in this page (the customer typed them), so the finder had them to find.
    on_page = finder.find(page.locator("#chat").inner_text(), "the chat")
    assert {leak.value for leak in on_page} >= {value for row in rows for value in row.planted}


def _wait_for_turn_with(assistant, text: str) -> None:
    """Until the customer's turn holding `text` (an order number, kept by the redactor)
    is logged."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        for conversation in _recent_conversations(assistant):
            if any(text in turn["user_text"] for turn in assistant.store.turns(conversation)):
                return
        time.sleep(0.3)
    raise AssertionError(f"no turn with {text!r} was logged")
