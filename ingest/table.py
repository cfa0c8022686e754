"""Delimited text tables read record by record, each with its physical line; a broken one costs only itself.

Open-data CSV files come with `;` or `,`, quoted fields over several lines, truncated lines and, now
and then, a quote never closed, after which `csv` would read the rest of the file as one field.
`read_table` yields every record with the physical line it starts on (the header is line 1), and a
malformed one with the reason, so that a report can name it and the reading goes on.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tileserver.core.errors import IngestError


class Record(NamedTuple):
    """One record: its values, or None and why (wrong column count, unreadable); `[]` if blank."""

    line: int  # the physical line it starts on, 1-based; the header is line 1
    values: list[str] | None
    problem: str


@dataclass
class Table:
    """A header and the records after it, read lazily."""

    header: list[str]
    separator: str
    records: Iterator[Record]


def read_table(text: io.TextIOBase, path: Path) -> Table:
    """The header and records of a delimited text (see `open_text`), its separator guessed from the header."""
    lines = _Lines(text)
    header_line = next(lines, "")
    if not header_line.strip():
        raise IngestError(f"{path}: empty file, no header")
    found = separator(header_line)
    header = next(csv.reader([header_line], delimiter=found))
    return Table(header, found, _records(lines, found, len(header)))


def header_key(name: str) -> str:
    """A header name folded so that every spelling of a column compares equal.

    >>> header_key('Code établissement'), header_key('coordX_origine'), header_key('Secteur Public/Privé')
    ('code_etablissement', 'coordx_origine', 'secteur_public_prive')
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_")


def separator(header_line: str) -> str:
    """The delimiter the header uses most, among `;`, `,` and tab (`;` on a tie).

    >>> separator('a;b;c'), separator('a,b'), separator('a,b;c'), separator('a\\tb\\tc')
    (';', ',', ';', '\\t')
    """
    return max(";,\t", key=header_line.count)


class _Lines:
    """Numbered physical lines for `csv`; the lines a runaway quote swallowed can be given back."""

    def __init__(self, text: io.TextIOBase):
        self._text = text
        self._back: list[str] = []
        self.number = 0
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else self._text.readline()
        if not line:
            raise StopIteration
        self.number += 1
        self.taken.append(line)
        return line

    def give_back(self) -> None:
        """Put back all but the first line of the last record, to be read again as records."""
        rest = self.taken[1:]
        self._back.extend(reversed(rest))
        self.number -= len(rest)


def _records(lines: _Lines, delimiter: str, width: int) -> Iterator[Record]:
    """Each record, checked against the header's width.

    A malformed record that spans several lines (a quote never closed) costs only its first line:
    the others are read again.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        lines.taken.clear()
        start = lines.number + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            lines.give_back()
            yield Record(start, None, f"unreadable CSV ({error})")
            continue
        if len(values) == width:
            yield Record(start, values, "")
        elif not any(value.strip() for value in values):
            yield Record(start, [], "")
        else:
            spanned = len(lines.taken) > 1
            lines.give_back()
            quote = " (a quote left open)" if spanned else ""
            yield Record(start, None, f"{len(values)} columns instead of {width}{quote}")
