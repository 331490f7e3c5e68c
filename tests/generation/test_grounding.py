import numpy as np
import pytest

from assistant.generation.grounding import StreamGuard, check_answer
from assistant.retrieval.index import load_encoder

PAST = [
    "Standard delivery takes 3 to 5 working days and costs £4.95.",
    "You can track your parcel from the Orders page of your account.",
]


@pytest.fixture(scope="module")
def encode(built_settings):
    encoder = load_encoder(built_settings)
    return lambda texts: encoder.encode(list(texts), normalize_embeddings=True)


def test_similarity_is_to_the_closest_past_answer(encode):
    def similarity(answer, past):
        return check_answer(answer, past, [], encode, -1.0).similarity

    close = similarity("Delivery takes 3 to 5 working days.", PAST)
    assert close > similarity("Our cafe serves oat milk lattes.", PAST)
    assert close == pytest.approx(similarity("Delivery takes 3 to 5 working days.", PAST[:1]))
    assert similarity("anything", []) == 0.0


def test_a_grounded_answer_passes(encode):
    verdict = check_answer("Delivery takes 3 to 5 working days.", PAST, ["how long?"], encode, 0.5)
    assert verdict.passed
    assert verdict.similarity is not None and verdict.similarity >= 0.5


def test_an_invented_identifier_fails_whatever_the_similarity(encode):
    verdict = check_answer("Delivery takes 2 days and costs £4.95.", PAST, [], encode, -1.0)
    assert not verdict.passed
    assert verdict.invented == ("number:2",)


def test_identifiers_from_the_conversation_are_allowed(encode):
    answer = "Order 204817 will arrive in 3 to 5 working days."
    assert check_answer(answer, PAST, ["where is order 204817"], encode, 0.3).passed


def test_an_unrelated_or_empty_answer_fails(encode):
    unrelated = check_answer("Our cafe serves oat milk lattes.", PAST, [], encode, 0.6)
    assert not unrelated.passed and "similarity" in unrelated.reason
    assert not check_answer("  ", PAST, [], encode, 0.0).passed


def test_an_answer_about_something_else_than_the_question_fails(encode):
    answer = "You can track your parcel from the Orders page of your account."
    question = "where is my parcel?"
    on_topic = check_answer(answer, PAST, [], encode, 0.5, question, 0.3)
    assert on_topic.passed and on_topic.relevance >= 0.3
    assert "similarity to the question" in on_topic.reason
    off_topic = check_answer(answer, PAST, [], encode, 0.5, "can I pay with a gift card?", 0.3)
    assert not off_topic.passed and off_topic.relevance < 0.3
    assert off_topic.similarity >= 0.5  # grounded all the same: it is a past answer
    assert "similarity to the question" in off_topic.reason
    # a version saved before the relevance threshold existed checks only the rest
    unchecked = check_answer(answer, PAST, [], encode, 0.5, "can I pay with a gift card?")
    assert unchecked.passed and unchecked.relevance is None


def test_the_stream_guard_releases_whole_words_and_keeps_list_markers():
    guard = StreamGuard(["order 204817"])
    pieces = ["Your ord", "er 2048", "17 is on", " its way.\n1.", " Track it"]
    shown = "".join(guard.feed(piece) for piece in pieces) + guard.finish()
    assert shown == "Your order 204817 is on its way.\n1. Track it"
    assert not guard.tripped


def test_the_stream_guard_withholds_an_invented_identifier():
    guard = StreamGuard(["where is my order?"])
    shown = guard.feed("Order ") + guard.feed("999999 ") + guard.feed("is late ")
    assert shown == "Order "
    assert guard.tripped and guard.invented == ("number:999999",)
    assert guard.finish() == ""
    assert guard.released == "Order "


def test_embeddings_are_unit_length_as_the_check_assumes(encode):
    assert np.allclose(np.linalg.norm(encode(PAST), axis=1), 1.0, atol=1e-5)


def test_past_answers_may_be_embedded_by_an_encoder_of_their_own(encode):
    asked = []

    def past_answers_only(texts):
        asked.append(list(texts))
        return encode(texts)

    answer = "You can track your parcel from the Orders page of your account."
    together = check_answer(answer, PAST, [], encode, 0.5, "where is my parcel?", 0.3)
    apart = check_answer(
        answer, PAST, [], encode, 0.5, "where is my parcel?", 0.3, past_answers_only
    )
    assert asked == [PAST]
    assert apart.passed == together.passed
    assert apart.similarity == pytest.approx(together.similarity, abs=1e-5)
    assert apart.relevance == pytest.approx(together.relevance, abs=1e-5)
