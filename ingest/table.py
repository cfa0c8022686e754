"""Delimited text tables read record by record, each with its physical line; a broken one costs only itself.

Open-data CSV files come with `;`, `,` or tabs, quoted fields over several lines, truncated lines and,
now and then, a quote never closed, after which `csv` would read the rest of the file as one field.
`read_table` yields every record with the physical line it starts on (the header is line 1), and a
malformed one with the reason, so that a report can name it and the reading goes on.

The delimiter is the one that gives the first rows the header's width: a file whose rows fit none
(a `,` file with an unquoted "lat, lon" column) stops the ingest with one line naming the file,
rather than every row rejected one by one. NUL characters, which no database text can hold, are
removed, and `Table.notes` says on which lines.
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


SAMPLE_LINES = 50  # the rows the delimiter is judged on
DELIMITERS = ";,\t"
MAX_LISTED_LINES = 10  # lines named in a note; the count stays exact beyond it


@dataclass
class Table:
    """A header and the records after it, read lazily."""

    header: list[str]
    separator: str
    records: Iterator[Record]
    lines: _Lines

    def notes(self) -> list[str]:
        """What was cleaned while reading (complete once `records` is exhausted)."""
        cleaned = self.lines.nul_lines
        if not cleaned:
            return []
        listed = ", ".join(map(str, cleaned[:MAX_LISTED_LINES])) + (", ..." if len(cleaned) > MAX_LISTED_LINES else "")
        return [f"NUL characters removed from {len(cleaned)} line(s): {listed}"]


def read_table(text: io.TextIOBase, path: Path) -> Table:
    """The header and records of a delimited text (see `open_text`), its delimiter found from the first rows."""
    lines = _Lines(text)
    header_line = next(lines, "")
    if not header_line.strip():
        raise IngestError(f"{path}: empty file, no header")
    found = delimiter(header_line, [line for line in lines.peek(SAMPLE_LINES) if line.strip()], path)
    header = next(csv.reader([header_line], delimiter=found))
    return Table(header, found, _records(lines, found, len(header)), lines)


def delimiter(header_line: str, sample: list[str], path: Path) -> str:
    """The delimiter with which most sample lines have the header's width (see `separator` for a tie).

    Each line is read alone, so a quote left open or a field over several lines costs only itself.

    >>> delimiter('a,b', ['1,"x;y"', '2,z'], Path('t.csv')), delimiter('a;b', [], Path('t.csv'))
    (',', ';')
    >>> delimiter('code', ['2A', '971'], Path('t.csv'))  # one column: any delimiter reads it
    ';'
    """
    fits = {}
    for candidate in DELIMITERS:
        width = len(next(csv.reader([header_line], delimiter=candidate)))
        widths = [_width(line, candidate) for line in sample]
        fits[candidate] = sum(w == width for w in widths) if width > 1 else -1
    best = max(DELIMITERS, key=lambda c: (fits[c], header_line.count(c), c == ";"))
    if sample and fits[best] == 0:
        width = len(next(csv.reader([header_line], delimiter=best)))
        raise IngestError(f"{path}: no delimiter (; , or tab) gives any of the first {len(sample)} lines the "
                          f"header's width ({width} columns with {best!r})")
    return best if fits[best] > 0 else separator(header_line)


def _width(line: str, candidate: str) -> int:
    """How many fields `line` alone holds with `candidate` as delimiter (0 when `csv` cannot read it).

    >>> _width('1;"open;z', ';'), _width('a,b', ';')
    (2, 1)
    """
    try:
        return len(next(csv.reader([line], delimiter=candidate), []))
    except csv.Error:
        return 0


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
        self.nul_lines: list[int] = []  # physical lines NUL characters were removed from
        self._read_lines = 0  # lines taken from the text so far

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else self._read()
        if not line:
            raise StopIteration
        self.number += 1
        self.taken.append(line)
        return line

    def _read(self) -> str:
        """The next line of the text, without NUL characters (the line is noted); "" at the end."""
        line = self._text.readline()
        self._read_lines += bool(line)
        if "\x00" in line:
            self.nul_lines.append(self._read_lines)
            line = line.replace("\x00", "")
        return line

    def peek(self, count: int) -> list[str]:
        """Up to `count` next lines, left to be read again."""
        ahead = []
        for _ in range(count):
            line = self._back.pop() if self._back else self._read()
            if not line:
                break
            ahead.append(line)
        self._back.extend(reversed(ahead))
        return ahead

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
