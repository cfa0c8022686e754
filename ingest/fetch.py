"""Sources as local files, whatever the network does: mirror, disk cache, resume, retry, progress.

`fetch` turns a manifest source (a local path, a `file://` URL or an http(s) URL) into a local file.

- **Local paths and `file://` URLs** are used in place.
- **Mirrors.** With `mirror`, `https://HOST/PATH?QUERY` is fetched from `MIRROR/HOST/PATH?QUERY`
  instead. A mirror that is a directory (or a `file://` URL) is a plain file lookup: the file is
  `MIRROR/HOST/PATH?QUERY`, the query kept verbatim after a literal `?` (as in the URL, still
  percent-encoded), and when that file does not exist, `MIRROR/HOST/PATH` without the query. The
  path part is percent-decoded (`%20` is a space). So `wget -x` or `curl --create-dirs -o` layouts work.
- **Cache.** Downloads land in `cache_dir` as `<16 hex of sha256(url)>-<basename>`, first in a
  `.part` file, renamed when complete. The `ETag`/`Last-Modified` of each file sit beside it in
  `<name>.json`; a cached file is revalidated with `If-None-Match`/`If-Modified-Since` and reused
  on `304`, or when the server cannot be reached (logged), so a rebuild works offline; a 4xx then
  is still an error (the source has moved). A cached file without validators is reused as is.
- **Resume and retry.** A `.part` left by a cut connection is resumed with `Range` (and `If-Range`,
  so a file changed meanwhile is fetched whole). Connection errors, timeouts, cuts and 5xx/429 are
  retried with exponential back-off (1, 2, 4, 8 s...). A 4xx, a full disk or exhausted retries raise
  `IngestError` naming the URL and the reason.

`open_text` reads what was fetched: gzip or not, UTF-8 with or without BOM, cp1252 where it is not.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import logging
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, build_opener, url2pathname

from tqdm import tqdm

from tileserver.core.errors import IngestError

CHUNK = 1 << 16
BACKOFF_SECONDS = 1.0  # first wait; doubled at each further try
USER_AGENT = "ecarto-ingest (+https://github.com/ecarto)"
log = logging.getLogger(__name__)


class _Transient(Exception):
    """A failure that another try may cure: refused or cut connection, timeout, 5xx."""


def fetch(
    url: str,
    *,
    cache_dir: Path,
    mirror: str | None = None,
    progress: bool = True,
    retries: int = 4,
    sleep: Callable[[float], object] = time.sleep,
    timeout: float = 60.0,
) -> Path:
    """A local file with the content of `url`, so that readers never touch the network."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("", "file"):
        return _local(url)
    if scheme not in ("http", "https"):
        raise IngestError(f"{url}: cannot fetch a {scheme!r} URL (only http, https, file, paths)")
    source = url
    if mirror is not None:
        source = mirror_url(url, mirror)
        if urlsplit(mirror).scheme.lower() in ("", "file"):
            return mirrored_file(url, source)
    label = url if source == url else f"{source} (mirror of {url})"
    download = _Download(source, label, cache_dir, progress=progress, retries=retries, sleep=sleep, timeout=timeout)
    return download.run()


def _local(url: str) -> Path:
    """The file a path or `file://` URL names, which must exist."""
    parts = urlsplit(url)
    path = Path(url2pathname(parts.path)) if parts.scheme.lower() == "file" else Path(url).expanduser()
    if not path.is_file():
        raise IngestError(f"{url}: no such file ({path})")
    return path.resolve()


def mirror_url(url: str, mirror: str) -> str:
    """Where a mirror keeps `url`: `MIRROR/HOST/PATH?QUERY`.

    >>> mirror_url('https://data.example.fr/api/v2/export.csv?lang=fr', 'https://mirror.example/m/')
    'https://mirror.example/m/data.example.fr/api/v2/export.csv?lang=fr'
    >>> mirror_url('https://data.example.fr/a.csv', '/srv/mirror')
    '/srv/mirror/data.example.fr/a.csv'
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = f"?{parts.query}" if parts.query else ""
    return f"{mirror.rstrip('/')}/{host}{parts.path or '/'}{query}"


def mirrored_file(url: str, source: str) -> Path:
    """The mirror's copy of `url`: `PATH?QUERY` first, then `PATH` without the query."""
    parts = urlsplit(source)
    local = url2pathname(parts.path) if parts.scheme.lower() == "file" else unquote(parts.path)
    candidates = [Path(f"{local}?{parts.query}"), Path(local)] if parts.query else [Path(local)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise IngestError(f"{url}: not in the mirror (looked for {tried})")


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where the download of `url` is kept: a hash of the URL, unique, then its basename, readable.

    >>> cache_path('https://h.example/data/annuaire%20v2.csv?x=1', Path('/c')).name
    '446a5bb851747bcc-annuaire_v2.csv'
    >>> cache_path('https://h.example/', Path('/c')).name.endswith('-download')
    True
    """
    name = unquote(urlsplit(url).path).rstrip("/").rpartition("/")[2]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "download"
    return cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


@contextmanager
def _writing(url: str, path: Path) -> Iterator[None]:
    """Turn a failed write (full disk, no permission) into an IngestError naming the file."""
    try:
        yield
    except OSError as error:
        raise IngestError(f"{url}: cannot write {path}: {error.strerror or error}") from error


class _Download:
    """One URL into the cache: revalidate, then try, resume and retry until complete."""

    def __init__(self, url: str, label: str, cache_dir: Path, *, progress: bool, retries: int,
                 sleep: Callable[[float], object], timeout: float):
        self.url, self.label, self.target = url, label, cache_path(url, cache_dir)
        self.part = _part(self.target)
        self.progress, self.retries, self.sleep, self.timeout = progress, retries, sleep, timeout

    def run(self) -> Path:
        """The cached file, downloaded or refreshed when needed."""
        if self.target.is_file() and self._still_fresh():
            return self.target
        with _writing(self.label, self.target.parent):
            self.target.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            try:
                self._attempt()
                return self.target
            except _Transient as error:
                if attempt >= self.retries:
                    raise IngestError(f"{self.label}: {error} (gave up after {attempt + 1} tries)") from error
                delay = BACKOFF_SECONDS * 2**attempt
                log.warning("%s: %s; trying again in %g s", self.label, error, delay)
                self.sleep(delay)
                attempt += 1

    def _still_fresh(self) -> bool:
        """Whether the cached copy can be used: unchanged (304), unreachable server, or no validators."""
        validators = read_json(_sidecar(self.target))
        if not validators:
            return True
        headers = {"If-None-Match": validators.get("etag"), "If-Modified-Since": validators.get("last_modified")}
        try:
            with self._open(headers) as response:
                return response.status == 304
        except _Transient as error:
            log.warning("%s: cannot revalidate (%s); using the cached copy", self.label, error)
            return True

    def _attempt(self) -> None:
        """One request: the whole file, or the rest of the `.part` when the server can resume."""
        offset = self.part.stat().st_size if self.part.is_file() else 0
        headers = {}
        if offset:
            validators = read_json(_sidecar(self.part))
            headers = {"Range": f"bytes={offset}-", "If-Range": _if_range(validators)}
        with self._open(headers) as response:
            if response.status == 416:
                self.part.unlink()
                raise _Transient("the partial download does not fit the file any more; starting again")
            if response.status != 206 or not _resumes_at(response, offset):
                offset = 0
                with _writing(self.label, self.part):
                    _write_json(_sidecar(self.part), _validators(response))
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            self._receive(response, offset, total)
        self._finish()

    def _finish(self) -> None:
        """Move the complete `.part`, and its validators, onto the cached file."""
        with _writing(self.label, self.target):
            if _sidecar(self.part).is_file():
                os.replace(_sidecar(self.part), _sidecar(self.target))
            else:
                _sidecar(self.target).unlink(missing_ok=True)
            os.replace(self.part, self.target)

    def _open(self, headers: dict[str, str | None]) -> http.client.HTTPResponse:
        """The response to a GET; 304 and 416 are answers, other errors raise."""
        sent = {"User-Agent": USER_AGENT, **{k: v for k, v in headers.items() if v}}
        try:
            return build_opener().open(Request(self.url, headers=sent), timeout=self.timeout)
        except HTTPError as error:
            if error.code in (304, 416):
                return error  # an HTTPError is also a response, with status and headers
            error.close()
            if error.code >= 500 or error.code == 429:
                raise _Transient(f"HTTP {error.code} {error.reason}") from error
            raise IngestError(f"{self.label}: HTTP {error.code} {error.reason}") from error
        except (OSError, http.client.HTTPException) as error:
            raise _Transient(_reason(error)) from error

    def _receive(self, response: http.client.HTTPResponse, offset: int, total: int | None) -> None:
        """Write the body after `offset` bytes of the `.part`; a short body is a cut to retry."""
        received = offset
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=self.target.name[17:], file=sys.stderr, disable=not self.progress)
        with bar, _writing(self.label, self.part), open(self.part, "ab" if offset else "wb") as out:
            while chunk := _read(response):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            raise _Transient(f"connection closed after {received} of {total} bytes")


def _read(response: http.client.HTTPResponse) -> bytes:
    """The next chunk of the body; a network failure becomes a retry, not a disk error."""
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as error:
        raise _Transient(_reason(error)) from error


def _reason(error: BaseException) -> str:
    if isinstance(error, URLError):
        return str(error.reason)
    return str(error) or type(error).__name__


def _resumes_at(response: http.client.HTTPResponse, offset: int) -> bool:
    """Whether a 206 answer starts where the `.part` ends (`Content-Range: bytes OFFSET-...`)."""
    return response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")


def _validators(response: http.client.HTTPResponse) -> dict[str, str]:
    found = {"etag": response.headers.get("ETag"), "last_modified": response.headers.get("Last-Modified")}
    return {k: v for k, v in found.items() if v}


def _if_range(validators: dict[str, str]) -> str | None:
    """A strong ETag, else the date: what `If-Range` accepts (weak ETags are not allowed).

    >>> _if_range({'etag': 'W/"x"', 'last_modified': 'Tue, 02 Jun 2026 10:00:00 GMT'})
    'Tue, 02 Jun 2026 10:00:00 GMT'
    >>> _if_range({'etag': '"x"'}), _if_range({})
    ('"x"', None)
    """
    etag = validators.get("etag")
    return etag if etag and not etag.startswith("W/") else validators.get("last_modified")


def read_json(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, str]) -> None:
    if data:
        path.write_text(json.dumps(data))
    else:
        path.unlink(missing_ok=True)


class Text(io.TextIOBase):
    """Lines of a file as text: gzip or not, UTF-8 (BOM dropped), cp1252 where a line is not UTF-8.

    Lines keep their end-of-line characters, as with `newline=''`, which is what `csv` wants.
    Decoding is line by line, so one badly encoded line costs nothing to the others; `notes()`
    says which lines fell back to cp1252 and whether a compressed file ended early.
    """

    def __init__(self, raw: BinaryIO, name: str):
        self._raw, self.name = raw, name
        self.line_number = 0
        self.fallback_lines: list[int] = []
        self.truncated: str | None = None

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        """The next line; `size` is not supported (whole lines only)."""
        if size is not None and size >= 0:
            raise io.UnsupportedOperation("Text reads whole lines only")
        try:
            line = self._raw.readline()
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            self.truncated = str(error)
            return ""
        if not line:
            return ""
        self.line_number += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = decode_line(line)
            self.fallback_lines.append(self.line_number)
        return text.removeprefix("\ufeff") if self.line_number == 1 else text

    def read(self, size: int | None = -1) -> str:
        """The rest of the file; `size` is not supported."""
        if size is not None and size >= 0:
            raise io.UnsupportedOperation("Text reads whole lines only")
        return "".join(iter(self.readline, ""))

    def close(self) -> None:
        self._raw.close()
        super().close()

    def notes(self) -> list[str]:
        """What a report should say about the decoding: cp1252 fallbacks, an early end."""
        notes = []
        if self.fallback_lines:
            first = ", ".join(str(n) for n in self.fallback_lines[:5])
            more = ", ..." if len(self.fallback_lines) > 5 else ""
            notes.append(f"{self.name}: {len(self.fallback_lines)} line(s) not valid UTF-8, "
                         f"read as cp1252 (line {first}{more})")
        if self.truncated:
            notes.append(f"{self.name}: the compressed file ends early ({self.truncated}); its last line is lost")
        return notes


def decode_line(line: bytes) -> str:
    """UTF-8 where the bytes are UTF-8, cp1252 for each sequence that is not (mixed lines happen).

    >>> decode_line('Collège Évariste'.encode('cp1252'))
    'Collège Évariste'
    >>> decode_line('École '.encode() + 'Gréville'.encode('cp1252'))
    'École Gréville'
    >>> decode_line(b'\\x81') == '\\ufffd'  # a byte cp1252 leaves undefined
    True
    """
    parts = []
    while True:
        try:
            parts.append(line.decode("utf-8"))
            return "".join(parts)
        except UnicodeDecodeError as error:
            parts.append(line[: error.start].decode("utf-8"))
            parts.append(line[error.start : error.end].decode("cp1252", errors="replace"))
            line = line[error.end :]


def open_text(path: Path) -> Text:
    """A text stream over a fetched file, whatever its compression and encoding."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        raw = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115 (Text closes it)
    except OSError as error:
        raise IngestError(f"{path}: cannot read ({error.strerror or error})") from error
    return Text(raw, Path(path).name)
