"""Every pattern that sees customer, agent or log text runs in linear time.

Linearity holds by construction: each pattern is an RE2 pattern. The adversarial inputs
(100,000 characters of the runs that made the old backtracking patterns explode) show it:
a backtracking pattern would not finish them.
"""

from itertools import islice

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.text import patterns
from assistant.text.redaction import Redactor

LENGTH = 100_000
PREFIXES = ["order", "order ", "PP-", "pp ", "+", "+1 ", "@", "a@", "dot ", " dot ", "(at)", " at "]
FILLERS = [" ", "1", "12 ", "123-", "1.", "-", "(", "DE89 ", "x", "\t", "\u3000", "\uff11"]


@st.composite
def adversarial(draw, length=LENGTH):
    """A prefix, then one filler repeated to `length`, then a character that makes a match fail."""
    prefix, filler = draw(st.sampled_from(PREFIXES)), draw(st.sampled_from(FILLERS))
    ending = draw(st.sampled_from(["", "!", "x", "@", "#"]))
    return (prefix + filler * (length // len(filler)))[:length] + ending


def test_every_shared_pattern_is_an_re2_pattern():
    assert len(patterns.ALL_PATTERNS) >= 10
    for name, pattern in patterns.ALL_PATTERNS.items():
        assert isinstance(pattern, re2._Regexp), name
    assert isinstance(patterns.ORDER_ID, re2._Regexp)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adversarial())
def test_every_pattern_finishes_on_adversarial_input(text):
    for pattern in patterns.ALL_PATTERNS.values():
        # search scans the whole text when nothing matches; the first matches of finditer
        # each start a match attempt (matches are many and short, so not all are taken).
        first = pattern.search(text)
        matches = list(islice(pattern.finditer(text), 100))
        assert (first is None) == (matches == [])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adversarial())
def test_the_redactor_finishes_on_adversarial_input(text):
    redacted = Redactor(["help@pebbleandpine.example"])(text)
    assert isinstance(redacted, str)


def test_the_order_pattern_on_a_long_run_of_spaces():
    text = "order" + " " * LENGTH + "204817"
    assert patterns.ORDER_ID.search(text).group("bare") == "204817"
    assert patterns.ORDER_ID.search("order" + " " * LENGTH + "x") is None


def test_the_redactor_finishes_on_its_costliest_inputs():
    # Digit groups and IBAN starts make the most candidates for the checksums and phonenumbers.
    redact = Redactor()
    for filler in ["12 ", "123-", "DE89 ", "\uff11\uff12 "]:
        assert isinstance(redact((filler * (LENGTH // len(filler)))[:LENGTH]), str)
