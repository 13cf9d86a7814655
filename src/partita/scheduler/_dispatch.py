"""Dispatch of slots and tokens: which ready jobs may start now (no asyncio here).

A :class:`Dispatcher` keeps the ready jobs in submission order. :meth:`Dispatcher.admit`
starts those whose launcher has a free slot and whose tokens are free; the others wait.
It is plain code: tests drive it directly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol


class Pool(Protocol):
    """What bounds how many jobs run at once (a launcher)."""

    @property
    def capacity(self) -> int | None:
        """How many of its jobs may hold a slot at once (``None``: no bound)."""
        ...


class TokenCounter(Protocol):
    """Takes and gives back token units (``TokenStore`` in a work directory)."""

    def try_acquire(self, key: str, tokens: dict[Any, int]) -> bool:
        """Take every unit for ``key``, or none; ``False`` if they are not free now."""
        ...

    def release(self, key: str, tokens: dict[Any, int]) -> None:
        """Give back the units of ``key``."""
        ...


@dataclass(eq=False)
class Ticket:
    """One ready job asking for a slot of ``pool`` (a launcher) and some token units."""

    key: str
    """The job identifier."""
    pool: Pool
    """What bounds it: jobs of the same pool share its ``capacity`` slots."""
    tokens: dict[Any, int] = field(default_factory=dict)
    admitted: bool = False
    withdrawn: bool = False
    order: int = 0
    """Its place in submission order (set by :meth:`Dispatcher.offer`)."""


class Dispatcher:
    """Admits ready jobs in submission order while slots and tokens allow.

    Waiting jobs are queued per pool, so that a full pool costs nothing to look at: with
    thousands of ready jobs and two slots, each release admits the next job in constant
    time instead of walking the whole queue.
    """

    def __init__(self, tokens: TokenCounter) -> None:
        self._tokens = tokens
        self._queues: dict[int, deque[Ticket]] = {}
        self._used: dict[int, int] = {}
        self._offered = 0
        self.waiting_for_tokens = False
        """Whether the last :meth:`admit` left a job waiting for tokens only (look again:
        another process may free them)."""

    def offer(self, ticket: Ticket) -> None:
        """Queue a ready job (call :meth:`admit` next)."""
        self._offered += 1
        ticket.order = self._offered
        key = id(ticket.pool)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(ticket)

    def withdraw(self, ticket: Ticket) -> None:
        """Forget a queued job (it was cancelled); release it if it was already admitted."""
        if ticket.withdrawn:
            return
        ticket.withdrawn = True
        queue = self._queues.get(id(ticket.pool))
        if queue is not None and ticket in queue:
            queue.remove(ticket)
        elif ticket.admitted:
            self.release(ticket)

    def release(self, ticket: Ticket) -> None:
        """An admitted job is over: give back its slot and its tokens."""
        if not ticket.admitted:
            return
        ticket.admitted = False
        key = id(ticket.pool)
        self._used[key] = max(self._used.get(key, 1) - 1, 0)
        if ticket.tokens:
            self._tokens.release(ticket.key, ticket.tokens)

    def running(self, pool: object) -> int:
        """How many admitted jobs of ``pool`` hold a slot."""
        return self._used.get(id(pool), 0)

    @property
    def queued(self) -> list[Ticket]:
        """The jobs waiting, in order."""
        return sorted((t for q in self._queues.values() for t in q), key=lambda t: t.order)

    def clear(self) -> list[Ticket]:
        """Withdraw every waiting job; returns them."""
        queue = self.queued
        self._queues = {}
        for ticket in queue:
            ticket.withdrawn = True
        return queue

    def admit(self) -> list[Ticket]:
        """Admit what can start now, in submission order; returns the admitted tickets."""
        admitted: list[Ticket] = []
        self.waiting_for_tokens = False
        for key, queue in self._queues.items():
            if not queue:
                continue
            capacity = queue[0].pool.capacity
            used = self._used.get(key, 0)
            # The head of the queue first: the common case (no tokens) pops in order.
            while queue and (capacity is None or used < capacity):
                ticket = queue[0]
                if ticket.tokens and not self._tokens.try_acquire(ticket.key, ticket.tokens):
                    break
                queue.popleft()
                used += 1
                ticket.admitted = True
                admitted.append(ticket)
            if queue and (capacity is None or used < capacity):
                # The head waits for tokens: later jobs of the pool may still start.
                remaining: deque[Ticket] = deque()
                for ticket in queue:
                    if capacity is not None and used >= capacity:
                        remaining.append(ticket)
                    elif ticket.tokens and not self._tokens.try_acquire(ticket.key, ticket.tokens):
                        self.waiting_for_tokens = True
                        remaining.append(ticket)
                    else:
                        used += 1
                        ticket.admitted = True
                        admitted.append(ticket)
                self._queues[key] = remaining
            self._used[key] = used
        if len(self._queues) > 1:
            admitted.sort(key=lambda t: t.order)
        return admitted
