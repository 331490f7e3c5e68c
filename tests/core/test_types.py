from assistant.core.types import SearchedOnRead, Source

FOUND = [Source("Where is my parcel?", "It ships in two days.", "order_status", 0.9)]


def test_past_questions_are_searched_once_and_only_when_read():
    calls = []

    def search():
        calls.append(1)
        return FOUND

    sources = SearchedOnRead(search)
    assert not sources.searched and sources.found() == [] and calls == []
    assert sources[0].intent == "order_status" and len(sources) == 1 and bool(sources)
    assert list(sources) == FOUND and sources[:1] == FOUND
    assert sources.searched and sources.found() == FOUND and calls == [1]


def test_a_search_that_finds_nothing_reads_as_empty():
    sources = SearchedOnRead(list)
    assert not sources and sources.searched and sources.found() == []
