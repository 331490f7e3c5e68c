"""Length groups: every text once, shortest first, each group within its rows and budget."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.core.padding import length_groups


def test_groups_cover_every_text_once_shortest_first() -> None:
    texts = ["a" * n for n in (5, 100, 7, 300, 20, 20, 1, 0)]
    groups = length_groups(texts, max_rows=3, budget=100)
    rows = np.concatenate(groups)
    assert sorted(rows.tolist()) == list(range(len(texts)))
    lengths = [len(texts[i]) for i in rows]
    assert lengths == sorted(lengths)
    assert [len(texts[i]) for i in groups[-1]] == [300]  # alone: over the budget by itself


@pytest.mark.parametrize(("max_rows", "budget"), [(1, 10_000), (4, 10_000), (64, 200), (64, 50)])
def test_each_group_keeps_to_its_rows_and_padded_budget(max_rows: int, budget: int) -> None:
    rng = np.random.default_rng(3)
    texts = ["x" * int(n) for n in rng.integers(1, 120, size=200)]
    groups = length_groups(texts, max_rows=max_rows, budget=budget)
    for group in groups:
        longest = max(len(texts[i]) for i in group)
        assert len(group) <= max_rows
        assert len(group) == 1 or len(group) * longest <= budget


def test_short_texts_share_one_group_and_an_empty_list_has_none() -> None:
    assert len(length_groups(["hi", "hello", "hey there"], max_rows=64)) == 1
    assert length_groups([], max_rows=64) == []
