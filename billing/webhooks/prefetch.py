"""Read Stripe first, then write in a short transaction: the gateway as a handler sees it while events are applied.

Handlers ask Stripe things in the middle of their work (the present state of a
subscription on a same-second tie, the PaymentIntent that paid an invoice, a card).
Holding the database transaction open across those calls would hold SQLite's write
lock (and PostgreSQL's row locks) for a network round trip. So while an event is
applied, the handler talks to a ``Prefetched`` view of the gateway: a call already
answered returns that answer; any other call stops the handler with
``StripeNeeded``. The applier then rolls the event's work back, makes the call with
no transaction open, keeps the answer, and runs the handler again, now one answer
further. Handlers are deterministic given the tables and Stripe's answers, so the
second run does what the first would have done. Writes (an idempotency key on each)
are made once, outside the transaction, and their answer replayed the same way.

An answer is kept with the wall-clock time it was asked. Between the ask and the
next run other writers may commit (the owner cancels in that moment), so a handler
that needs Stripe's state *as of now* (a same-second tie, ``billing.sync``) asks
through ``asked_since``: an answer asked before the row's last change is dropped
and asked again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Optional, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")

# Plain attributes and calls that never reach Stripe: passed straight through.
_LOCAL = frozenset({"livemode", "sandbox", "describe"})


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    try:
        hash(value)
    except TypeError:  # an unhashable value object (a dataclass holding lists): its repr names it
        return repr(value)
    return value


@dataclass(frozen=True)
class Call:
    """One gateway call, as data: made later, outside any transaction."""

    method: str
    args: tuple
    kwargs: tuple  # sorted (name, value) pairs

    @classmethod
    def of(cls, method: str, *args: Any, **kwargs: Any) -> "Call":
        """The call ``gateway.<method>(*args, **kwargs)`` as a handler makes it."""
        return cls(method, args, tuple(sorted(kwargs.items())))

    @property
    def key(self) -> Hashable:
        return (self.method, _freeze(self.args), _freeze(self.kwargs))

    def make(self, gateway: Any) -> Any:
        return getattr(gateway, self.method)(*self.args, **dict(self.kwargs))


class StripeNeeded(BaseException):
    """The handler needs an answer from Stripe that was not fetched yet (a BaseException: no handler's
    ``except Exception`` may swallow it)."""

    def __init__(self, call: Call):
        super().__init__(call.method)
        self.call = call


class Answers:
    """Stripe's answers gathered for one event (results, and errors to raise again), with when each was asked."""

    def __init__(self) -> None:
        self._answers: dict[Hashable, tuple[bool, Any, int]] = {}
        self._asked = 0

    def __len__(self) -> int:
        # Calls made, asked again ones included: the applier's bound on calls per event bounds re-asking too.
        return self._asked

    def __contains__(self, call: object) -> bool:
        return isinstance(call, Call) and call.key in self._answers

    def fetch(self, gateway: Any, call: Call) -> None:
        """Make ``call`` now (no transaction may be open) and keep its answer or its error."""
        asked = time.time_ns()  # before the request: the answer is at least as new as this
        self._asked += 1
        try:
            self._answers[call.key] = (True, call.make(gateway), asked)
        except Exception as error:  # noqa: BLE001 - replayed to the handler, which decides
            self._answers[call.key] = (False, error, asked)

    def answer(self, call: Call, since_ns: Optional[int] = None) -> Any:
        """The kept answer to ``call``; ``StripeNeeded`` if there is none, or it was asked before ``since_ns``."""
        found = self._answers.get(call.key)
        if found is not None and since_ns is not None and found[2] < since_ns:
            del self._answers[call.key]  # older than what the row holds: ask again
            found = None
        if found is None:
            raise StripeNeeded(call)
        ok, value, _asked = found
        if not ok:
            raise value
        return value


class Prefetched:
    """The gateway as handlers see it while a transaction is open: answers only from ``answers``."""

    def __init__(self, gateway: Any, answers: Answers, since_ns: Optional[int] = None):
        self._gateway = gateway
        self._answers = answers
        self._since_ns = since_ns

    def since(self, since_ns: Optional[int]) -> "Prefetched":
        """This gateway, answering only with answers asked at or after ``since_ns`` (wall-clock ns)."""
        return Prefetched(self._gateway, self._answers, since_ns)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._gateway, name)
        if name in _LOCAL or name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._answers.answer(Call.of(name, *args, **kwargs), self._since_ns)

        return call


def asked_since(gateway: Any, since_ns: Optional[int]) -> Any:
    """``gateway`` answering with Stripe's state as of ``since_ns`` or later.

    A ``Prefetched`` gateway drops answers asked earlier and asks again; any other gateway asks Stripe now,
    which is later than anything already written.
    """
    return gateway.since(since_ns) if isinstance(gateway, Prefetched) else gateway


def asking(gateway: Any) -> Optional[int]:
    """When the answers ``gateway`` gives from now on are asked, at the earliest (wall-clock ns): now, for a
    gateway that calls Stripe; None for a ``Prefetched`` one, whose answers may be older (its caller asks again
    through ``asked_since`` instead). ``billing.sync`` settles a same-second tie with it."""
    return None if isinstance(gateway, Prefetched) else time.time_ns()


class TooManyStripeCalls(RuntimeError):
    """A unit of work kept needing new answers from Stripe (a bug: work must be deterministic given its answers)."""


def read_first(session: Session, gateway: Any, work: Callable[[Any], T], *, limit: int = 12) -> T:
    """Run ``work`` (one unit: a dunning step, a heal) with ``gateway`` seen through ``Prefetched``, so no
    transaction of ``session`` is open while Stripe is called: each time the work stops for an answer its
    transaction is rolled back, the call is made with nothing open, and the work runs again from the start.

    What ``work`` committed before it stopped stays (a dunning retry's claim, made durable before money moves);
    work that commits must recognise its own commit when it runs again. The caller commits the result.
    """
    answers = Answers()
    while True:
        try:
            return work(Prefetched(gateway, answers))
        except StripeNeeded as need:
            session.rollback()
            if len(answers) >= limit:
                raise TooManyStripeCalls(f"more than {limit} Stripe calls for one unit of work") from None
            answers.fetch(gateway, need.call)
