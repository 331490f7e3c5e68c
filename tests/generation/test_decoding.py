import threading

import numpy as np

from assistant.generation.decoding import (
    copying_tokens,
    greedy_tokens,
    repeating_next_tokens,
    text_pieces,
)

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

    def feed(self, tokens, state):
        return self._logits(state + len(tokens)), state + len(tokens)

    def _logits(self, position):
        logits = np.zeros(self.vocabulary, np.float32)
        if position < len(self.script):
            logits[self.script[position]] = 2.0
        logits[(position % (self.vocabulary - 1)) + 1] += 1.0  # a runner-up
        return logits


def _greedy(model, max_tokens=20, repeat=0, stop=None):
    return list(greedy_tokens(model, [7, 8], END, max_tokens, repeat, stop or threading.Event()))


class WishingModel:
    """At each step wants `wishes[step]` most, then tokens by the `fallback` ranking."""

    def __init__(self, wishes, fallback, vocabulary=12):
        self.wishes = wishes
        self.passes = []  # the tokens of each pass, the prompt first
        self.ranking = np.zeros(vocabulary, np.float32)
        for rank, token in enumerate(fallback):
            self.ranking[token] = len(fallback) - rank

    def start(self, prompt):
        self.passes.append(list(prompt))
        return self._logits(0), 0

    def feed(self, tokens, state):
        self.passes.append(list(tokens))
        return self._logits(state + len(tokens)), state + len(tokens)

    def _logits(self, step):
        logits = self.ranking.copy()
        if step < len(self.wishes):
            logits[self.wishes[step]] += 100
        return logits


def _copied(wishes, sentences, max_tokens=20, fallback=(END,)):
    model = WishingModel(wishes, fallback)
    return list(copying_tokens(model, [7], sentences, END, max_tokens, threading.Event()))


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


def test_a_copied_answer_is_made_of_whole_sentences_each_once():
    # after 4 it wants to end, but must finish the sentence (4 5); then it wants 4 again,
    # which may not start a sentence twice, so it takes the other one (1 2 3)
    sentences = [[1, 2, 3], [4, 5]]
    fallback = (4, 1, 2, 3, 5, END)
    assert _copied([4, END, 4], sentences, fallback=fallback) == [4, 5, 1, 2, 3]


def test_a_copied_answer_ends_after_any_whole_sentence():
    assert _copied([3, END, 3, END], [[1, 2, 3], [4, 5]], fallback=(1, 2, 3)) == [1, 2, 3]


def test_a_sentence_that_goes_on_as_a_longer_one_may_stop_or_go_on():
    sentences = [[1, 2], [1, 2, 3], [6]]
    assert _copied([1, 2, END], sentences) == [1, 2]
    assert _copied([1, 2, 3, END], sentences) == [1, 2, 3]
    # 6 starts the next sentence once [1, 2] is complete, rather than going on to [1, 2, 3]
    assert _copied([1, 2, 6, END], sentences) == [1, 2, 6]


def test_no_sentence_is_started_that_the_token_limit_would_cut():
    assert _copied([1, 2, 3, 4, 5, END], [[1, 2, 3, 4], [5]], max_tokens=3) == [5]
    assert _copied([1, 2, 3, 4, END], [[1, 2, 3, 4]], max_tokens=3) == []


def test_nothing_to_copy_writes_nothing():
    assert _copied([1, END], []) == []


def test_tokens_no_choice_could_change_are_fed_in_one_pass():
    # 1 starts [1, 2, 3] or [1, 4]: a choice at 2 or 4; [5, 6, 7] has none once started
    model = WishingModel([1, 2, 8, 5, END], fallback=(END,))
    sentences = [[1, 2, 3], [1, 4], [5, 6, 7]]
    written = list(copying_tokens(model, [9], sentences, END, 20, threading.Event()))
    assert written == [1, 2, 3, 5, 6, 7]
    assert model.passes == [[9], [1], [2, 3], [5, 6, 7]]
