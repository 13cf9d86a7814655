"""The dispatcher alone: slots and tokens, in submission order, without asyncio."""

from __future__ import annotations

from typing import Any

from partita.scheduler._dispatch import Dispatcher, Ticket


class Pool:
    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity


class Counter:
    """Token units in memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held: dict[str, int] = {}

    def try_acquire(self, key: str, tokens: dict[Any, int]) -> bool:
        units = sum(tokens.values())
        if sum(self.held.values()) + units > self.capacity:
            return False
        self.held[key] = units
        return True

    def release(self, key: str, tokens: dict[Any, int]) -> None:
        self.held.pop(key, None)


def test_capacity_admits_in_submission_order() -> None:
    pool = Pool(2)
    dispatcher = Dispatcher(Counter(0))
    tickets = [Ticket(f"j{i}", pool) for i in range(4)]
    for ticket in tickets:
        dispatcher.offer(ticket)
    assert [t.key for t in dispatcher.admit()] == ["j0", "j1"]
    assert dispatcher.admit() == [] and dispatcher.running(pool) == 2
    dispatcher.release(tickets[1])
    assert [t.key for t in dispatcher.admit()] == ["j2"]
    dispatcher.release(tickets[1])  # a second release changes nothing
    assert dispatcher.running(pool) == 2


def test_unbounded_pool_and_separate_pools() -> None:
    small, free = Pool(1), Pool(None)
    dispatcher = Dispatcher(Counter(0))
    for key, pool in [("a", small), ("b", small), ("c", free), ("d", free)]:
        dispatcher.offer(Ticket(key, pool))
    assert [t.key for t in dispatcher.admit()] == ["a", "c", "d"]
    assert [t.key for t in dispatcher.queued] == ["b"]


def test_tokens_wait_and_are_given_back() -> None:
    pool = Pool(None)
    counter = Counter(2)
    dispatcher = Dispatcher(counter)
    big, small, other = (
        Ticket("big", pool, {"gpu": 2}),
        Ticket("s", pool, {"gpu": 1}),
        Ticket("o", pool),
    )
    dispatcher.offer(big)
    dispatcher.offer(small)
    dispatcher.offer(other)
    assert [t.key for t in dispatcher.admit()] == ["big", "o"]
    assert dispatcher.waiting_for_tokens
    dispatcher.release(big)
    assert counter.held == {}
    assert [t.key for t in dispatcher.admit()] == ["s"]
    assert not dispatcher.waiting_for_tokens


def test_withdraw_before_and_after_admission() -> None:
    pool = Pool(1)
    counter = Counter(5)
    dispatcher = Dispatcher(counter)
    first, second = Ticket("a", pool, {"t": 1}), Ticket("b", pool)
    dispatcher.offer(first)
    dispatcher.offer(second)
    dispatcher.withdraw(second)
    assert [t.key for t in dispatcher.admit()] == ["a"]
    dispatcher.withdraw(first)  # admitted, then cancelled: its slot and tokens come back
    assert dispatcher.running(pool) == 0 and counter.held == {}
    assert dispatcher.admit() == []
    third = Ticket("c", pool)
    dispatcher.offer(third)
    assert dispatcher.clear() == [third] and dispatcher.admit() == []


class CountingPool:
    """A pool that counts how often its capacity is asked."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self.asked = 0

    @property
    def capacity(self) -> int:
        self.asked += 1
        return self._capacity


def test_a_full_pool_is_not_walked() -> None:
    """With many ready jobs and few slots, a release looks at the next job only."""
    pool = CountingPool(2)
    dispatcher = Dispatcher(Counter(0))
    tickets = [Ticket(f"j{i}", pool) for i in range(1000)]
    for ticket in tickets:
        dispatcher.offer(ticket)
        dispatcher.admit()
    assert pool.asked <= len(tickets)  # once per admit, never once per queued job
    pool.asked = 0
    order = []
    while dispatcher.running(pool):
        running = [t for t in tickets if t.admitted]
        dispatcher.release(running[0])
        order += [t.key for t in dispatcher.admit()]
    assert order == [f"j{i}" for i in range(2, 1000)]
    assert pool.asked <= 1000
