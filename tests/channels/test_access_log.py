import logging
import logging.config

from assistant.channels.access_log import PrivateAccessLog, logging_config, private_path


def test_conversation_ids_and_session_hashes_are_masked():
    conversation = "3f2a9c0d4b5e46f7a8b9c0d1e2f3a4b5"
    assert private_path(f"/api/conversations/{conversation}/messages?after=4") == (
        "/api/conversations/{id}/messages?…"
    )
    assert private_path("/gradio_api/heartbeat/k3j4h5g6f7d") == "/gradio_api/heartbeat/{id}"
    assert private_path("/gradio_api/queue/data?session_hash=k3j4h5g6f7d") == (
        "/gradio_api/queue/data?…"
    )
    assert private_path(f"/agent/x/{conversation}") == "/agent/x/{id}"


def test_ordinary_paths_are_kept():
    for path in ("/api/chat", "/agent/", "/gradio_api/queue/join", "/assets/index-B3x.js", "/"):
        assert private_path(path) == path


def test_a_segment_is_a_token_when_long_mixed_and_of_token_characters_only():
    assert private_path("/file/Ab12_cd34-EF56gh78") == "/file/{id}"
    assert private_path("/file/Ab12_cd34-EF567") == "/file/Ab12_cd34-EF567"  # 15 long
    assert private_path("/file/abcdefghijklmnopqrst") == "/file/abcdefghijklmnopqrst"  # no digit
    assert private_path("/assets/index-B3xk9Lm2Qp7Rs1Tu.js") == "/assets/index-B3xk9Lm2Qp7Rs1Tu.js"


def test_uvicorn_access_records_are_rewritten():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/gradio_api/queue/data?session_hash=k3j4h5g6f7d", "1.1", 200),
        None,
    )
    assert PrivateAccessLog().filter(record)
    assert "k3j4h5g6f7d" not in record.getMessage()
    assert "/gradio_api/queue/data" in record.getMessage()


def test_the_server_logging_configuration_filters_access_lines():
    config = logging_config()
    assert config["handlers"]["access"]["filters"] == ["private"]
    logging.config.dictConfig(config)
    handler = next(h for h in logging.getLogger("uvicorn.access").handlers)
    assert any(isinstance(f, PrivateAccessLog) for f in handler.filters)
