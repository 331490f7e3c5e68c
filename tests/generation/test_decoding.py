import threading

import numpy as np

from assistant.generation.decoding import greedy_tokens, repeating_next_tokens, text_pieces

END = 0


class ScriptedModel:
    """Prefers the next token of `script`; the state counts the tokens it was given."""

    def __init__(self, script, vocabulary=10):
        self.script = script
        self.vocabulary = vocabulary
        self.prompts = []

    def start(self, prompt):
        self.prompts.append(list(prompt))
        return self._logits(0), 0

    def step(self, token, state):
        return self._logits(state + 1), state + 1

    def _logits(self, position):
        logits = np.zeros(self.vocabulary, np.float32)
        if position < len(self.script):
            logits[self.script[position]] = 2.0
        logits[(position % (self.vocabulary - 1)) + 1] += 1.0  # a runner-up
        return logits


def _greedy(model, max_tokens=20, repeat=0, stop=None):
    return list(greedy_tokens(model, [7, 8], END, max_tokens, repeat, stop or threading.Event()))


def test_the_answer_ends_at_the_end_token():
    model = ScriptedModel([3, 4, 5, END, 6])
    assert _greedy(model) == [3, 4, 5]
    assert model.prompts == [[7, 8]]


def test_the_answer_stops_at_the_token_limit():
    assert _greedy(ScriptedModel([3, 4, 5, 6]), max_tokens=2) == [3, 4]


def test_a_set_stop_event_ends_the_answer_after_the_current_token():
    stop = threading.Event()
    tokens = greedy_tokens(ScriptedModel([3, 4, 5, 6]), [7], END, 20, 0, stop)
    assert next(tokens) == 3
    stop.set()
    assert list(tokens) == []


def test_an_ngram_is_not_written_twice_but_the_prompt_may_be_quoted():
    # the script would write 1 2 3 1 2 3: the second 3 would repeat "1 2 3"
    written = _greedy(ScriptedModel([1, 2, 3, 1, 2, 3, END]), max_tokens=6, repeat=3)
    assert written[:5] == [1, 2, 3, 1, 2] and written[5] != 3
    # the prompt 7 8 is not counted: the answer may start with it
    assert _greedy(ScriptedModel([7, 8, END]), repeat=2) == [7, 8]


def test_repeating_next_tokens():
    assert repeating_next_tokens([1, 2, 3, 1, 2], 3) == [3]
    assert repeating_next_tokens([1, 2, 3, 1, 2], 0) == []
    assert repeating_next_tokens([1, 2], 3) == []


class Letters:
    """One character a token; token 0 is special and decodes to nothing."""

    def __init__(self, text):
        self.text = text

    def decode(self, ids):
        return "".join(self.text[i - 1] for i in ids if i)


def test_text_comes_out_in_whole_words_and_adds_up():
    text = " fast delivery, today"
    pieces = list(text_pieces(iter(range(1, len(text) + 1)), Letters(text)))
    assert "".join(pieces) == text
    assert pieces[:-1] == [" ", "fast ", "delivery, "]
    assert pieces[-1] == "today"


def test_no_tokens_give_no_text():
    assert list(text_pieces(iter([]), Letters("abc"))) == []
