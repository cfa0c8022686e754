"""The request deadline on SQLite: a progress handler interrupts a statement that runs too long.

SQLite has no statement timeout; it calls a progress handler every `STEPS` virtual-machine steps
(and between the rows a Python SQL function such as `ecarto_relate` is called for), and a true
answer makes the statement fail with "interrupted". A connection is armed for one statement or one
page of a streamed cursor (`bounded`), so a long stream of quick pages goes on while one slow
statement stops at `seconds`.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

from tileserver.core.errors import Timeout

STEPS = 1000  # a few microseconds of work between two looks at the clock


class BoundedConnection(sqlite3.Connection):
    """An SQLite connection whose statements stop at a deadline (`connect(..., factory=BoundedConnection)`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seconds = math.inf
        self.until = math.inf
        self.set_progress_handler(self._expired, STEPS)

    def _expired(self) -> bool:
        return time.monotonic() > self.until

    @contextmanager
    def bounded(self) -> Iterator[None]:
        """Run a block with the deadline armed; an interrupted statement becomes a `Timeout` (503)."""
        self.until = time.monotonic() + self.seconds
        try:
            yield
        except sqlite3.OperationalError as error:
            if str(error) != "interrupted":
                raise
            raise Timeout(f"the query ran longer than {self.seconds:g} s and was stopped") from error
        finally:
            self.until = math.inf


def paced(conn: BoundedConnection, cursor: sqlite3.Cursor, batch: int) -> Iterator[tuple]:
    """The rows of a cursor, each page of `batch` rows read under the deadline; the cursor closes with the stream."""
    rows = iter(cursor)
    try:
        while True:
            with conn.bounded():
                page = list(islice(rows, batch))
            if not page:
                return
            yield from page
    finally:
        cursor.close()
