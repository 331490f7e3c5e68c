import asyncio
import threading
import time

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from assistant.core.errors import AccessDenied
from assistant.core.settings import Settings
from assistant.staff.access import SignInThrottle, require_role, sign_in_check
from tests.conftest import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    AGENT_NAME,
    AGENT_PASSWORD,
    with_settings,
)


def signs_in(settings, role, name, password) -> bool:
    return asyncio.run(sign_in_check(settings, role)(name, password))


@pytest.mark.parametrize(
    ("role", "name", "password", "expected"),
    [
        ("agent", AGENT_NAME, AGENT_PASSWORD, True),
        ("agent", ADMIN_NAME, ADMIN_PASSWORD, True),
        ("admin", ADMIN_NAME, ADMIN_PASSWORD, True),
        ("admin", AGENT_NAME, AGENT_PASSWORD, False),
        ("agent", AGENT_NAME, ADMIN_PASSWORD, False),
        ("agent", "nobody", AGENT_PASSWORD, False),
    ],
)
def test_sign_in_needs_the_right_password_and_a_role_the_page_allows(
    staffed, role, name, password, expected
):
    assert signs_in(staffed.settings, role, name, password) is expected


def test_no_password_is_kept_in_the_settings(staffed):
    dumped = staffed.settings.model_dump_json()
    assert AGENT_PASSWORD not in dumped
    assert ADMIN_PASSWORD not in dumped
    assert all(user.password_hash.startswith("$argon2id$") for user in staffed.settings.users)


def test_each_handler_gets_the_signed_in_account(staffed):
    account = require_role(staffed.settings, gr.Request(username=AGENT_NAME), "agent")
    assert (account.name, account.role) == (AGENT_NAME, "agent")
    admin = require_role(staffed.settings, gr.Request(username=ADMIN_NAME), "agent")
    assert admin.role == "admin"


@pytest.mark.parametrize(
    ("username", "role", "message"),
    [
        (None, "agent", "not signed in"),
        ("", "agent", "not signed in"),
        ("ghost", "agent", "no longer configured"),
        (AGENT_NAME, "admin", "needs the admin role"),
    ],
)
def test_handlers_refuse_anyone_else(staffed, username, role, message):
    with pytest.raises(AccessDenied, match=message):
        require_role(staffed.settings, gr.Request(username=username), role)


def test_an_account_removed_from_the_settings_can_no_longer_act(staffed):
    without_agent = staffed.settings.model_copy(
        update={"users": [u for u in staffed.settings.users if u.name != AGENT_NAME]}
    )
    with pytest.raises(AccessDenied, match="no longer configured"):
        require_role(without_agent, gr.Request(username=AGENT_NAME), "agent")


@pytest.fixture(scope="module")
def client(staffed):
    with TestClient(create_app(staffed)) as test_client:
        yield test_client


def log_in(client, path, name, password):
    return client.post(f"{path}/login", data={"username": name, "password": password})


def test_the_pages_ask_for_a_sign_in(client):
    assert client.get("/agent", follow_redirects=False).headers["location"].endswith("/agent/")
    for path in ("/agent", "/admin"):
        response = client.get(f"{path}/config")
        assert response.status_code == 401
        assert "Sign in" in response.json()["detail"]["auth_message"]


def test_an_agent_signs_in_to_the_agent_page_but_not_the_admin_page(staffed):
    with TestClient(create_app(staffed)) as client:
        assert log_in(client, "/agent", AGENT_NAME, "wrong password").status_code == 400
        assert log_in(client, "/agent", AGENT_NAME, AGENT_PASSWORD).status_code == 200
        assert client.get("/agent/config").status_code == 200
        assert log_in(client, "/admin", AGENT_NAME, AGENT_PASSWORD).status_code == 400
        assert client.get("/admin/config").status_code == 401


def test_an_admin_signs_in_to_both_pages(staffed):
    with TestClient(create_app(staffed)) as client:
        for path in ("/agent", "/admin"):
            assert log_in(client, path, ADMIN_NAME, ADMIN_PASSWORD).status_code == 200
            assert client.get(f"{path}/config").status_code == 200


def test_the_throttle_refuses_a_name_after_repeated_failures_until_they_age():
    now = [0.0]
    throttle = SignInThrottle(limit=2, window=60.0, clock=lambda: now[0])
    throttle.record("ana", succeeded=False)
    now[0] = 30.0
    throttle.record("ana", succeeded=False)
    assert throttle.blocked("ana") and not throttle.blocked("bo")
    now[0] = 60.5  # the first failure is older than the window
    assert not throttle.blocked("ana")
    throttle.record("ana", succeeded=False)
    assert throttle.blocked("ana")
    throttle.record("ana", succeeded=True)
    assert not throttle.blocked("ana")


def test_after_too_many_wrong_passwords_even_the_right_one_is_refused(staffed):
    settings = staffed.settings.model_copy(update={"sign_in_attempts": 2})
    throttle = SignInThrottle(settings.sign_in_attempts, settings.sign_in_window_seconds)
    check = sign_in_check(settings, "agent", throttle)
    for _ in range(2):
        assert not asyncio.run(check(AGENT_NAME, "wrong password"))
    assert not asyncio.run(check(AGENT_NAME, AGENT_PASSWORD))
    assert asyncio.run(check(ADMIN_NAME, ADMIN_PASSWORD))  # other names are not affected


def test_failures_on_one_page_count_on_the_other(staffed):
    settings = staffed.settings.model_copy(update={"sign_in_attempts": 2})
    with TestClient(create_app(with_settings(staffed, settings))) as client:
        for _ in range(2):
            assert log_in(client, "/agent", ADMIN_NAME, "wrong password").status_code == 400
        blocked = log_in(client, "/admin", ADMIN_NAME, ADMIN_PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


class CountingCheck:
    """Stands in for the argon2 check: counts calls and how many run at once."""

    def __init__(self) -> None:
        self.calls, self.running, self.most = 0, 0, 0
        self._lock = threading.Lock()

    def __call__(self, settings, name, password):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        return None  # a wrong password


def guess_in_parallel(check, guesses: int) -> list[bool]:
    async def burst():
        return await asyncio.gather(*(check(AGENT_NAME, f"guess {i}") for i in range(guesses)))

    return asyncio.run(burst())


def test_a_burst_of_parallel_guesses_is_counted_before_any_is_checked(staff, monkeypatch):
    counting = CountingCheck()
    monkeypatch.setattr("assistant.staff.access.authenticate", counting)
    settings = Settings(users=staff, sign_in_attempts=3)
    results = guess_in_parallel(sign_in_check(settings, "agent"), 20)
    assert not any(results)
    assert counting.calls == 3


def test_argon2_checks_run_at_most_sign_in_concurrency_at_once(staff, monkeypatch):
    counting = CountingCheck()
    monkeypatch.setattr("assistant.staff.access.authenticate", counting)
    settings = Settings(users=staff, sign_in_attempts=8, sign_in_concurrency=2)
    guess_in_parallel(sign_in_check(settings, "agent"), 8)
    assert counting.calls == 8 and counting.most <= 2


def test_a_blocked_name_says_when_to_try_again():
    now = [100.0]
    throttle = SignInThrottle(limit=1, window=60.0, clock=lambda: now[0])
    assert throttle.retry_after("ana") == 0 and throttle.reserve("ana")
    assert not throttle.reserve("ana")
    now[0] = 130.0
    assert throttle.retry_after("ana") == 30
