from assistant.text.identifiers import find_identifiers, invented_identifiers

REPLY = """Your order PP-204817 ships on 12/03/2026; delivery is £4.95.
1. Sign in at https://pebbleandpine.example/help.
2. Or email help@pebbleandpine.example, 24/7."""


def test_numbers_emails_and_urls_are_found_and_normalised():
    assert find_identifiers(REPLY) == {
        "number:204817",
        "number:12/03/2026",
        "number:4.95",
        "number:24/7",
        "email:help@pebbleandpine.example",
        "url:https://pebbleandpine.example/help",
    }


def test_the_numbers_of_an_ordered_list_are_layout_not_facts():
    assert find_identifiers("1. Open the app\n2) Tap Orders") == set()
    assert find_identifiers("It takes 2 days") == {"number:2"}


def test_an_identifier_is_invented_only_when_no_input_has_it():
    given = ["Where is order 204817?", "Standard delivery costs £4.95."]
    assert invented_identifiers("Order PP-204817 costs 4.95", given) == []
    assert invented_identifiers("Order 204818 arrives in 3 days", given) == [
        "number:204818",
        "number:3",
    ]


def test_thousands_separators_do_not_hide_a_number():
    assert invented_identifiers("We refunded 1,200 points", ["1200 points"]) == []
