"""A bounded, expiring map: what each in-memory store keeps per call."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlBook(Generic[V]):
    """key → V, each entry expiring `ttl_s` after it was put, at most `max_entries` (oldest go)."""

    def __init__(
        self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def put(self, key: str, value: V) -> None:
        self._expire()
        self._items[key] = (self._clock() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, key: str) -> V | None:
        self._expire()
        item = self._items.get(key)
        return None if item is None else item[1]

    def take(self, key: str) -> V | None:
        self._expire()
        item = self._items.pop(key, None)
        return None if item is None else item[1]

    def _expire(self) -> None:
        now = self._clock()
        while self._items:
            key, (deadline, _) = next(iter(self._items.items()))
            if deadline > now:
                break
            del self._items[key]

    def __len__(self) -> int:
        self._expire()
        return len(self._items)
