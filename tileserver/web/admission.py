"""Admission: a bound on the expensive requests a worker runs at once, so cheap ones keep a thread.

A gunicorn worker has a few threads (the Procfile: 4) and a filtered items request may hold one up
to the request deadline. At most `max_expensive` such requests run at once in a worker; one more
waits `WAIT` seconds for a slot, then gets a `Busy` (503 with `Retry-After`), so `/health`, tiles
and plain pages always find a thread and a database connection (keep `max_expensive` below the
pool size). A slot is held until the response's body has been sent, or its client has gone, since
a streamed page still reads from the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app

from tileserver.core.errors import Busy

WAIT = 1.0  # seconds an expensive request waits for a slot: about three filtered pages of 1,000 at their p99
# (bench: at 0.25 s, 8 clients of CQL2 pages on 2 workers got 503s; a flood still does after a second)


class Admission:
    """A worker's slots for expensive requests."""

    def __init__(self, slots: int, wait: float = WAIT):
        self.slots = slots
        self.wait = wait
        self._free = threading.BoundedSemaphore(slots)

    def enter(self) -> Callable[[], None]:
        """Take a slot, waiting at most `wait` seconds, else `Busy`; returns what gives it back (once)."""
        if not self._free.acquire(timeout=self.wait):
            raise Busy(f"{self.slots} expensive requests are running already; retry in a moment")
        once = threading.Lock()

        def release() -> None:
            if once.acquire(blocking=False):
                self._free.release()

        return release


def admitted(answer: Callable[[], Response], *, expensive: bool) -> Response:
    """The response `answer` builds; an expensive one is built and sent while it holds a slot of this worker."""
    if not expensive:
        return answer()
    release = current_app.extensions["ecarto.admission"].enter()
    try:
        response = answer()
    except BaseException:
        release()
        raise
    response.response = _releasing(response.response, release)
    response.call_on_close(release)  # a client gone before the first byte: the body is never iterated
    return response


def _releasing(body: Iterable[bytes], release: Callable[[], None]) -> Iterator[bytes]:
    """The body, giving the slot back once it is sent, or abandoned."""
    try:
        yield from body
    finally:
        release()
