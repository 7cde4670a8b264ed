"""The HubSpot accounts the sink writes to, each with its own rate budget, token and requests in
flight: one throttled, slow or failing account never holds up another's.

A command's platform account is its ``externalAccountId``; its *route*
(:mod:`connector.installs.routing`) names the HubSpot account the command goes to: the hub id
of the customer's install (several platform accounts may share one), a private-app token of its
own, or, in private-app mode, the one token for every account. Each HubSpot account is a
:class:`Destination`: the rate budget HubSpot counts for it, an applier whose client sends its
token, and how many of its requests may be in flight. :class:`Destinations` finds (and makes,
on first use) the destination of a platform account, or says why there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from connector.installs import NoRoute, Route
from connector.sink.apply import Applier
from connector.sink.budget import RateBudget
from connector.sink.flight import Concurrency


@dataclass(eq=False)
class Destination:
    """One HubSpot account: its rate budget, its applier and its requests in flight."""

    key: str
    applier: Applier
    budget: RateBudget | None
    concurrency: Concurrency
    #: Its work items in flight now.
    flying: int = 0
    #: The platform accounts routed here (their held commands share its budget).
    accounts: set[str] = field(default_factory=set)

    def rate(self) -> float | None:
        """Requests per second its budget allows (None: unlimited)."""
        budget = self.budget
        return budget.window_limit / budget.window_seconds if budget is not None else None

    def room(self) -> int:
        """Work items it may have in flight now."""
        return self.concurrency.target(self.rate())

    def slots(self, unlimited: int) -> int:
        """Requests its budget allows now (``unlimited`` without a budget)."""
        return self.budget.free() if self.budget is not None else unlimited


#: A platform account's route, or why it has none.
Resolve = Callable[[str], Route | NoRoute]
#: The destination of a route seen for the first time.
Build = Callable[[Route], Destination]


class Destinations:
    """Platform accounts to destinations: one for all (private-app mode), or one per HubSpot
    account, made on first use (app mode)."""

    def __init__(self, *, default: Destination | None = None, resolve: Resolve | None = None,
                 build: Build | None = None) -> None:
        if default is None and (resolve is None or build is None):
            raise ValueError("give a default destination, or resolve and build")
        self._default = default
        self._resolve = resolve
        self._build = build
        self._by_key: dict[str, Destination] = {}

    @classmethod
    def single(cls, destination: Destination) -> Destinations:
        """Every account goes to ``destination``."""
        return cls(default=destination)

    @property
    def is_single(self) -> bool:
        """One destination for every account."""
        return self._default is not None

    def of(self, account: str) -> Destination | NoRoute:
        """Where ``account``'s commands go now, or why they cannot."""
        if self._default is not None:
            return self._default
        assert self._resolve is not None and self._build is not None
        route = self._resolve(account)
        if isinstance(route, NoRoute):
            return route
        destination = self._by_key.get(route.account_key)
        if destination is None:
            destination = self._by_key[route.account_key] = self._build(route)
        destination.accounts.add(account)
        return destination

    def __iter__(self) -> Iterator[Destination]:
        if self._default is not None:
            yield self._default
        else:
            yield from list(self._by_key.values())
