import json
from pathlib import Path

import pytest

from assistant.core.errors import DataError
from assistant.routing.templates import TemplateBook
from assistant.text.slots import extract_slots


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("where is PP-204817", "PP-204817"),
        ("where is pp204817?", "PP-204817"),
        ("order #318842 never came", "PP-318842"),
        ("my order number 772015", "PP-772015"),
    ],
)
def test_order_numbers_are_found_and_normalised(text, order_id):
    assert extract_slots(text)["order_id"] == order_id


def test_email_is_found_and_unrelated_numbers_are_not_orders():
    slots = extract_slots("unsubscribe ana@example.org, I have 2 kids born 2019")
    assert slots == {"email": "ana@example.org"}


def write(path, document):
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_template_slots_are_read_from_placeholders(tmp_path):
    book = TemplateBook.load(
        write(
            tmp_path / "t.json",
            {"slots": {"order_id": "Which order?"}, "templates": {"track": "Order {order_id}."}},
        )
    )
    template = book.get("track")
    assert template.slots == ("order_id",)
    assert template.missing({}) == ["order_id"]
    assert template.fill({"order_id": "PP-123456"}) == "Order PP-123456."
    assert book.prompt_for("order_id") == "Which order?"


def test_unknown_slot_is_refused(tmp_path):
    path = write(tmp_path / "t.json", {"templates": {"x": "Hi {name}"}})
    with pytest.raises(DataError, match="unknown slot"):
        TemplateBook.load(path)


def test_slot_without_a_question_is_refused(tmp_path):
    path = write(tmp_path / "t.json", {"slots": {}, "templates": {"x": "Order {order_id}"}})
    with pytest.raises(DataError, match="needs a question"):
        TemplateBook.load(path)


def test_broken_json_names_the_line(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{\n  "templates": {\n    "x": "a",,\n  }\n}', encoding="utf-8")
    with pytest.raises(DataError, match="line 3"):
        TemplateBook.load(path)


def test_demo_templates_load_with_their_slots():
    book = TemplateBook.load(Path(__file__).parents[2] / "data" / "templates.json")
    assert book.get("order_status").slots == ("order_id",)
    assert book.get("newsletter_unsubscribe").slots == ("email",)
    assert "out_of_scope" in book.messages
