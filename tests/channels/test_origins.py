"""Other sites' pages cannot act on the staff pages; staff sessions expire and end everywhere."""

import pytest
from fastapi.testclient import TestClient

from assistant.staff.sessions import StaffSessions
from tests.channels.staffed_fakes import fake_app
from tests.conftest import ADMIN_NAME, ADMIN_PASSWORD, AGENT_NAME, AGENT_PASSWORD

HOST = "support.example"
OWN = f"http://{HOST}"
EVIL = "http://evil.example"
QUEUE_JOIN = "/agent/gradio_api/queue/join"


@pytest.fixture
def client(tmp_path, staff):
    with TestClient(fake_app(tmp_path, staff), base_url=OWN) as test_client:
        yield test_client


def log_in(client, path, name, password, **headers):
    form = {"username": name, "password": password}
    return client.post(f"{path}/login", data=form, headers=headers)


def test_a_preflight_from_another_origin_is_not_allowed(client):
    response = client.options(
        QUEUE_JOIN, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code >= 400


def test_another_origin_cannot_sign_in_join_the_queue_or_post(client):
    assert log_in(client, "/agent", AGENT_NAME, AGENT_PASSWORD, Origin=EVIL).status_code == 403
    assert log_in(client, "/agent", AGENT_NAME, AGENT_PASSWORD).status_code == 200
    for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/page"}, {"Origin": "null"}):
        response = client.post(QUEUE_JOIN, json={}, headers=headers)
        assert response.status_code == 403, headers
        assert "access-control-allow-origin" not in response.headers
    cross_site = client.get(
        "/agent/gradio_api/queue/data", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403


def test_a_malformed_origin_or_host_is_refused_not_a_server_error(tmp_path, staff):
    with TestClient(fake_app(tmp_path, staff), raise_server_exceptions=False) as client:
        for headers in ({"Origin": "http://["}, {"Origin": OWN, "Host": "[::1"}):
            response = client.post("/agent/login", data={"username": "x"}, headers=headers)
            assert response.status_code == 403, headers


def test_the_own_origin_and_allowed_ones_may(tmp_path, staff):
    shop = "https://shop.example"
    app = fake_app(tmp_path, staff, allowed_origins=[shop])
    with TestClient(app, base_url=OWN) as client:
        assert log_in(client, "/agent", AGENT_NAME, AGENT_PASSWORD, Origin=OWN).status_code == 200
        referred = log_in(client, "/admin", ADMIN_NAME, ADMIN_PASSWORD, Referer=f"{OWN}/admin/")
        assert referred.status_code == 200
        preflight = client.options(
            "/api/chat", headers={"Origin": shop, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.headers["access-control-allow-origin"] == shop


def test_session_cookies_are_lax_and_secure_only_over_https(tmp_path, staff):
    with TestClient(fake_app(tmp_path, staff), base_url=OWN) as client:
        cookies = log_in(client, "/agent", AGENT_NAME, AGENT_PASSWORD).headers.get_list(
            "set-cookie"
        )
    assert cookies and all("SameSite=Lax" in c and "Secure" not in c for c in cookies)
    app = fake_app(tmp_path, staff, trusted_proxies=["10.0.0.0/8"])
    with TestClient(app, base_url=OWN, client=("10.0.0.5", 5000)) as client:
        proxied = log_in(
            client, "/agent", AGENT_NAME, AGENT_PASSWORD, **{"X-Forwarded-Proto": "https"}
        )
    cookies = proxied.headers.get_list("set-cookie")
    assert cookies and all("SameSite=Lax" in c and "Secure" in c for c in cookies)
    assert not any("SameSite=none" in c for c in cookies)


def test_signing_out_on_one_page_ends_the_sessions_on_both(client):
    for path in ("/agent", "/admin"):
        assert log_in(client, path, ADMIN_NAME, ADMIN_PASSWORD).status_code == 200
        assert client.get(f"{path}/config").status_code == 200
    client.get("/agent/logout?all_session=false", follow_redirects=False)
    for path in ("/agent", "/admin"):
        assert client.get(f"{path}/config").status_code == 401


def test_a_stolen_cookie_stops_working_at_sign_out(tmp_path, staff):
    app = fake_app(tmp_path, staff)
    with TestClient(app, base_url=OWN) as agent, TestClient(app, base_url=OWN) as thief:
        assert log_in(agent, "/admin", ADMIN_NAME, ADMIN_PASSWORD).status_code == 200
        thief.cookies.update(agent.cookies)
        assert thief.get("/admin/config").status_code == 200
        log_in(agent, "/agent", ADMIN_NAME, ADMIN_PASSWORD)
        agent.get("/agent/logout", follow_redirects=False)
        assert thief.get("/admin/config").status_code == 401


def test_sessions_expire():
    now = [0.0]
    sessions = StaffSessions(lifetime_hours=12, clock=lambda: now[0])
    agent, admin = sessions.table("/agent"), sessions.table("/admin")
    agent["t1"], admin["t2"] = "ana", "ana"
    now[0] = 11.9 * 3600
    assert agent.get("t1") == "ana" and "t2" in admin and sessions.signed_in("/agent")
    now[0] = 12.1 * 3600
    assert agent.get("t1") is None and "t2" not in admin and not sessions.signed_in("/agent")
