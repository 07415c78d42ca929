"""Running independent requests on a few connections at once, with progress and errors in the caller's thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["in_parallel"]

T = TypeVar("T")


def in_parallel(work: Callable[[T], None], items: Sequence[T], workers: int, on_done: Callable[[T], None]) -> None:
    """Run `work(item)` on at most `workers` threads; `on_done(item)` runs in the caller's thread as each ends.

    The first failure (of `work` or `on_done`) cancels what has not started, waits for what is running and
    is raised here, so a caller never carries on (e.g. to Upload-Finish) after a lost batch.
    One worker = plain sequential calls.
    """
    if workers <= 1 or len(items) <= 1:
        for item in items:
            work(item)
            on_done(item)
        return
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="cvat-upload") as pool:
        pending: dict[Future[None], T] = {pool.submit(work, item): item for item in items}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    item = pending.pop(f)
                    f.result()  # the batch's error, if any
                    on_done(item)
        finally:
            for f in pending:
                f.cancel()
