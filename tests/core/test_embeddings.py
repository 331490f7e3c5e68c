import numpy as np

from assistant.core.embeddings import RememberedEmbed


def letters(texts):
    """A deterministic embedding: letter counts."""
    return np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts])


def test_remembered_vectors_are_not_embedded_again():
    asked = []

    def counting_letters(texts):
        asked.append(list(texts))
        return letters(texts)

    remembered = RememberedEmbed(counting_letters, capacity=3)
    assert np.array_equal(remembered(["ab", "cd"]), letters(["ab", "cd"]))
    assert np.array_equal(remembered(["cd", "ef", "ab"]), letters(["cd", "ef", "ab"]))
    assert asked == [["ab", "cd"], ["ef"]]
    remembered(["gh"])  # over capacity: the oldest, "ab", is dropped
    remembered(["ab"])
    assert asked[-1] == ["ab"]
    assert remembered([]).size == 0
