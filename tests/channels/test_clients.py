from assistant.channels.clients import Clients, origin_of


def scope(peer: str, *headers: tuple[str, str]) -> dict:
    raw = [(name.encode(), value.encode()) for name, value in headers]
    return {"type": "http", "client": (peer, 5000), "headers": raw, "scheme": "http"}


def test_every_forwarded_header_counts_so_a_client_cannot_write_its_own_address():
    clients = Clients(["10.0.0.1"])
    # The client sent a forged header; the proxy added the real address in a second one.
    request = scope("10.0.0.1", ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.9"))
    assert clients.address(request) == "203.0.113.9"


def test_a_trusted_proxy_on_an_exempt_address_is_not_exempt():
    clients = Clients(["127.0.0.1"], exempt=["127.0.0.1"])
    assert not clients.exempt(scope("127.0.0.1"))
    assert Clients([], exempt=["127.0.0.1"]).exempt(scope("127.0.0.1"))


def test_a_malformed_origin_is_none():
    for value in ("http://[", "http://host:99999", "javascript:alert(1)", "null"):
        assert origin_of(value) is None
    assert origin_of("HTTP://Support.Example:80/x") == "http://support.example"
