"""A bounded map that forgets its least recently used entries: what an App keeps of expensive builds
(version engines, insight results, SQL sandboxes) lives in one of these, owned by the App, not a module."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """Thread-safe; `get_or_build` builds a missing value once however many threads ask at the same time.

    A dropped entry is not closed: a request may still be reading it."""

    def __init__(self, max_entries: int, *, one_build_at_a_time: bool = False) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[K, threading.Lock] = {}
        # builds that hold whole versions in memory run one after another instead of per key
        self._one_build = threading.Lock() if one_build_at_a_time else None

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_build(self, key: K, build: Callable[[], V], valid: Callable[[V], bool] = lambda _: True) -> V:
        """The entry for `key`, built by `build` when missing or no longer `valid`."""
        value = self.get(key)
        if value is not None and valid(value):
            return value
        with self._lock:
            gate = self._one_build or self._building.setdefault(key, threading.Lock())
        with gate:  # one thread builds, the others wait for it and take its value
            value = self.get(key)
            if value is not None and valid(value):
                return value
            value = build()
            self.put(key, value)
            return value

    def values(self) -> list[V]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
