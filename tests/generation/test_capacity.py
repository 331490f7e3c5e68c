import threading

from assistant.generation.capacity import WritingCapacity


def test_beyond_the_workers_and_the_waiting_places_a_writer_is_turned_away_at_once():
    capacity = WritingCapacity(workers=1, waiting=1)
    writing, waited, release = threading.Event(), threading.Event(), threading.Event()

    def write() -> None:
        with capacity.turn() as admitted:
            assert admitted
            writing.set()
            release.wait(5)

    def wait_then_write() -> None:
        with capacity.turn() as admitted:
            waited.set()
            assert admitted

    first = threading.Thread(target=write)
    first.start()
    assert writing.wait(5)
    second = threading.Thread(target=wait_then_write)
    second.start()
    while capacity._admitted._value > 0:  # the second holds the waiting place
        threading.Event().wait(0.001)
    with capacity.turn() as admitted:
        assert not admitted
    assert not waited.is_set()
    release.set()
    first.join(5)
    second.join(5)
    assert waited.is_set()
    with capacity.turn() as admitted:
        assert admitted
