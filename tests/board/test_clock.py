from board.clock import VirtualClock


def test_virtual_clock_runs_timers_at_their_deadlines_in_order():
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: seen.append(("b", clock.now())))
    clock.call_later(1.0, lambda: seen.append(("a", clock.now())))
    cancelled = clock.call_later(1.5, lambda: seen.append(("x", clock.now())))
    cancelled.cancel()
    clock.advance(3.0)
    assert seen == [("a", 1.0), ("b", 2.0)]
    assert clock.now() == 3.0


def test_virtual_clock_refuses_to_go_back():
    clock = VirtualClock(start=10.0)
    try:
        clock.advance_to(5.0)
    except ValueError as error:
        assert "cannot go back" in str(error)
    else:
        raise AssertionError("going back in time was accepted")


def test_seeded_random_replays():
    first, second = VirtualClock(seed=7).random, VirtualClock(seed=7).random
    assert [first.random() for _ in range(5)] == [second.random() for _ in range(5)]
    assert VirtualClock(seed=8).random.random() != VirtualClock(seed=7).random.random()
