"""Waiting for a slot: the loop side of the dispatcher (futures, and polling for tokens)."""

from __future__ import annotations

import asyncio

from partita.scheduler._dispatch import Dispatcher, Ticket
from partita.scheduler._job import Record


class Slots:
    """Jobs wait here, on the loop, until the dispatcher admits them (loop thread only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dispatcher: Dispatcher) -> None:
        self._loop = loop
        self._dispatcher = dispatcher
        self._waits: dict[Ticket, asyncio.Future[None]] = {}
        self._token_poll: asyncio.TimerHandle | None = None

    async def acquire(self, rec: Record) -> Ticket:
        """Wait until ``rec`` may start: a launcher slot and its tokens are its own."""
        ticket = Ticket(rec.identifier, rec.launcher, dict(rec.spec.tokens))
        future: asyncio.Future[None] = self._loop.create_future()
        self._waits[ticket] = future
        self._dispatcher.offer(ticket)
        self.dispatch()
        try:
            await future
        except asyncio.CancelledError:
            self._waits.pop(ticket, None)
            self._dispatcher.withdraw(ticket)
            self.dispatch()
            raise
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Give back what ``ticket`` held, and admit whoever may start now."""
        self._dispatcher.release(ticket)
        self.dispatch()

    def dispatch(self) -> None:
        """Start ready jobs, in submission order, while slots and tokens allow."""
        for ticket in self._dispatcher.admit():
            future = self._waits.pop(ticket, None)
            if future is None or future.done():
                self._dispatcher.release(ticket)
            else:
                future.set_result(None)
        if self._dispatcher.waiting_for_tokens and self._token_poll is None:
            # Units may be freed by other processes: look again soon.
            def again() -> None:
                self._token_poll = None
                self.dispatch()

            self._token_poll = self._loop.call_later(0.2, again)

    def cancel_waiting(self) -> None:
        """Stop every job still waiting for a slot (its wait raises ``CancelledError``)."""
        for ticket in self._dispatcher.clear():
            future = self._waits.pop(ticket, None)
            if future is not None and not future.done():
                future.cancel()
