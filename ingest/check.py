"""`ecarto sources check`: the head of every source against the columns the manifest needs.

Open-data portals rename columns without warning. This fetches only the first few KB of each
source (an HTTP `Range` request, read as a stream and cut short if the server sends it all),
reads the header, and says per source whether it answered, which columns it has, and which
columns the manifest needs that it lacks, with the closest existing names. A `main` indicator or
a base table that would fail makes the check fail, before a nightly ingest does.
"""

from __future__ import annotations

import csv
import difflib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, build_opener, url2pathname

from ingest import table as tabular
from ingest.fetch import USER_AGENT, decode_line, mirror_url, mirrored_file
from ingest.indicators import group_sources
from ingest.manifest import Manifest
from ingest.schools import FIELDS
from tileserver.core.errors import IngestError

HEAD_BYTES = 16384
_POSITIONS = (("latitude", "longitude"), ("x", "y", "epsg"))


@dataclass
class SourceCheck:
    """What the head of one source says."""

    name: str  # the base table, or the indicators reading the source
    url: str
    main: bool  # a base table or a `main` indicator: failing it fails the check
    reachable: bool = False
    error: str = ""
    columns: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # needed column -> closest found

    @property
    def fatal(self) -> bool:
        """Whether an ingest would fail or lose a main indicator because of this source."""
        return self.main and (not self.reachable or bool(self.missing))

    def summary(self) -> str:
        """A few lines for the terminal."""
        state = "FAIL" if self.fatal else ("warn" if self.missing or not self.reachable else "ok")
        lines = [f"[{state}] {self.name}: {self.url}"]
        if not self.reachable:
            lines.append(f"    unreachable: {self.error}")
        elif self.columns:
            lines.append(f"    columns: {', '.join(self.columns[:30])}{' ...' if len(self.columns) > 30 else ''}")
        for name, close in self.missing.items():
            hint = f"; closest: {', '.join(close)}" if close else ""
            lines.append(f"    missing column {name!r}{hint}")
        return "\n".join(lines)


def check_sources(manifest: Manifest, *, mirror: str | None = None, timeout: float = 30.0) -> list[SourceCheck]:
    """Check every source of the manifest: base tables first, then each indicator source once."""
    results = []
    for name, source in manifest.sources.items():
        result = SourceCheck(name, source.url, main=True)
        head = _probe(result, mirror, timeout)
        if head is not None and name == "schools":
            result.columns = _header(head)
            result.missing = _school_gaps(result.columns, source.fields)
        results.append(result)
    for group in group_sources(manifest.indicators).values():
        first = group[0]
        names = ", ".join(i.id for i in group)
        result = SourceCheck(f"indicators {names}", first.source, main=any(i.main for i in group))
        head = _probe(result, mirror, timeout)
        if head is not None:
            result.columns = _header(head)
            needed = dict.fromkeys(c for i in group for c in i.needs)
            result.missing = {c: closest(c, result.columns) for c in needed
                              if tabular.header_key(c) not in {tabular.header_key(h) for h in result.columns}}
        results.append(result)
    return results


def closest(name: str, columns: Sequence[str]) -> list[str]:
    """The existing columns closest to a missing one.

    >>> closest('elig_ftth', ['code_insee', 'elig_ftth_fixe', 'nbr'])
    ['elig_ftth_fixe']
    """
    keyed = {tabular.header_key(c): c for c in columns}
    return [keyed[k] for k in difflib.get_close_matches(tabular.header_key(name), list(keyed), n=3, cutoff=0.5)]


def _school_gaps(columns: list[str], fields: dict[str, str]) -> dict[str, list[str]]:
    """What the school reader would miss: a UAI column, a position, any column `fields` names."""
    keys = {tabular.header_key(c) for c in columns}
    found = {name for name, candidates in FIELDS.items() if keys & set(candidates)}
    found |= {name for name, column in fields.items() if tabular.header_key(column) in keys}
    missing = {}
    if "uai" not in found:
        missing[FIELDS["uai"][0]] = closest(FIELDS["uai"][0], columns)
    if not any(set(group) <= found for group in _POSITIONS):
        missing["latitude"] = closest("latitude", columns)
    for column in fields.values():
        if tabular.header_key(column) not in keys:
            missing[column] = closest(column, columns)
    return missing


def _probe(result: SourceCheck, mirror: str | None, timeout: float) -> bytes | None:
    """The head of a source, noting on `result` whether it answered."""
    try:
        head = read_head(result.url, mirror=mirror, timeout=timeout)
    except IngestError as error:
        result.error = error.description
        return None
    result.reachable = True
    return head


def read_head(url: str, *, mirror: str | None = None, timeout: float = 30.0, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of a source (uncompressed when it is gzip), never the whole file."""
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and mirror is not None:
        source = mirror_url(url, mirror)
        if urlsplit(mirror).scheme.lower() in ("", "file"):
            return _gunzip(_read_local(mirrored_file(url, source), size))
        url, parts = source, urlsplit(source)
    if parts.scheme.lower() in ("", "file"):
        path = Path(url2pathname(parts.path)) if parts.scheme else Path(url)
        return _gunzip(_read_local(path, size))
    request = Request(url, headers={"User-Agent": USER_AGENT, "Range": f"bytes=0-{size - 1}"})
    try:
        with build_opener().open(request, timeout=timeout) as response:
            return _gunzip(response.read(size))
    except HTTPError as error:
        raise IngestError(f"HTTP {error.code} {error.reason}") from error
    except (URLError, OSError) as error:
        raise IngestError(str(getattr(error, "reason", error))) from error


def _read_local(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as error:
        raise IngestError(f"{path}: {error.strerror or error}") from error


def _gunzip(head: bytes) -> bytes:
    """The start of a gzip stream decompressed (a cut stream is fine); other bytes as they are."""
    if head[:2] != b"\x1f\x8b":
        return head
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)


def _header(head: bytes) -> list[str]:
    """The column names of a delimited text's first line (empty for JSON and other formats)."""
    line = decode_line(head.split(b"\n", 1)[0]).removeprefix("\ufeff").rstrip("\r")
    if not line or line.lstrip().startswith(("{", "[")):
        return []
    return next(csv.reader([line], delimiter=tabular.separator(line)))
