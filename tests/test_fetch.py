"""Downloads against a real HTTP server on 127.0.0.1: cache, mirror, retry, resume, errors; and open_text."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.fetch import cache_path, fetch, open_text
from tileserver.core.errors import IngestError

BODY = bytes(range(256)) * 800  # 200 kB, more than one read chunk


class Site:
    """What the test server serves, how it misbehaves, and what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fail_next = 0  # answer 503 to this many requests
        self.cut_after: int | None = None  # the next body stops after this many bytes
        self.ranges = True  # whether Range requests are honoured
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.statuses: list[int] = []
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, dict(self.headers)))
                if site.fail_next:
                    site.fail_next -= 1
                    return self.answer(503)
                body = site.files.get(self.path)
                if body is None:
                    return self.answer(404)
                etag = f'"{hashlib.sha256(body).hexdigest()[:12]}"'
                if self.headers.get("If-None-Match") == etag:
                    return self.answer(304)
                start = self.range_start(etag)
                if start >= len(body) > 0:
                    return self.answer(416)
                self.answer(206 if start else 200, len(body) - start, etag, start, len(body))
                payload = body[start:]
                if site.cut_after is not None:
                    payload, site.cut_after = payload[: site.cut_after], None
                self.wfile.write(payload)

            def range_start(self, etag: str) -> int:
                wanted = self.headers.get("Range", "")
                if not (site.ranges and wanted.startswith("bytes=")):
                    return 0
                if self.headers.get("If-Range", etag) != etag:
                    return 0
                return int(wanted.removeprefix("bytes=").rstrip("-"))

            def answer(self, status: int, length: int = 0, etag: str = "", start: int = 0, size: int = 0) -> None:
                site.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                if etag:
                    self.send_header("ETag", etag)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("no_proxy", "*")
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), site.handler())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def get(url: str, tmp_path: Path, sleeps: list[float], **options: object) -> Path:
    return fetch(url, cache_dir=tmp_path / "cache", progress=False, sleep=sleeps.append, **options)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_lands_in_the_cache_under_hash_and_basename(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/data/annuaire.csv"] = BODY
    path = get(f"{site.url}/data/annuaire.csv", tmp_path, sleeps)
    assert path.read_bytes() == BODY
    assert path.parent == tmp_path / "cache"
    assert path.name.endswith("-annuaire.csv")
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []


def test_cached_file_is_revalidated_not_downloaded_again(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/a.csv"] = BODY
    first = get(f"{site.url}/a.csv", tmp_path, sleeps)
    second = get(f"{site.url}/a.csv", tmp_path, sleeps)
    assert first == second
    assert site.statuses == [200, 304]
    assert "If-None-Match" in site.requests[1][1]


def test_changed_file_is_downloaded_again(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/a.csv"] = b"old"
    get(f"{site.url}/a.csv", tmp_path, sleeps)
    site.files["/a.csv"] = b"new"
    assert get(f"{site.url}/a.csv", tmp_path, sleeps).read_bytes() == b"new"


def test_cached_copy_is_used_when_the_server_is_gone(tmp_path: Path, sleeps: list) -> None:
    url = f"http://127.0.0.1:{closed_port()}/a.csv"
    target = cache_path(url, tmp_path / "cache")
    target.parent.mkdir()
    target.write_bytes(b"kept")
    target.with_name(target.name + ".json").write_text('{"etag": "\\"x\\""}')
    assert get(url, tmp_path, sleeps).read_bytes() == b"kept"
    assert sleeps == []


def test_server_errors_are_retried_with_exponential_backoff(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/a.csv"] = BODY
    site.fail_next = 2
    assert get(f"{site.url}/a.csv", tmp_path, sleeps).read_bytes() == BODY
    assert site.statuses == [503, 503, 200]
    assert sleeps == [1.0, 2.0]


def test_unreachable_url_gives_up_after_the_retries(tmp_path: Path, sleeps: list) -> None:
    url = f"http://127.0.0.1:{closed_port()}/a.csv"
    with pytest.raises(IngestError, match="refused") as raised:
        get(url, tmp_path, sleeps, retries=3)
    assert url in raised.value.description
    assert "4 tries" in raised.value.description
    assert sleeps == [1.0, 2.0, 4.0]


def test_cut_download_is_resumed_with_range(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/big.csv"] = BODY
    site.cut_after = 50_000
    assert get(f"{site.url}/big.csv", tmp_path, sleeps).read_bytes() == BODY
    assert site.statuses == [200, 206]
    assert site.requests[1][1]["Range"] == "bytes=50000-"
    assert sleeps == [1.0]


def test_cut_download_starts_over_when_the_server_cannot_resume(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/big.csv"] = BODY
    site.cut_after = 50_000
    site.ranges = False
    assert get(f"{site.url}/big.csv", tmp_path, sleeps).read_bytes() == BODY
    assert site.statuses == [200, 200]


def test_part_of_a_changed_file_is_not_resumed(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/big.csv"] = BODY
    site.cut_after = 50_000
    with pytest.raises(IngestError, match="closed after 50000 of"):
        get(f"{site.url}/big.csv", tmp_path, sleeps, retries=0)
    site.files["/big.csv"] = BODY[::-1]
    assert get(f"{site.url}/big.csv", tmp_path, sleeps).read_bytes() == BODY[::-1]
    assert site.statuses == [200, 200]


def test_not_found_is_an_ingest_error_without_retries(site: Site, tmp_path: Path, sleeps: list) -> None:
    with pytest.raises(IngestError, match="HTTP 404") as raised:
        get(f"{site.url}/missing.csv", tmp_path, sleeps)
    assert f"{site.url}/missing.csv" in raised.value.description
    assert sleeps == []


def test_full_disk_is_an_ingest_error(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/a.csv"] = BODY
    url = f"{site.url}/a.csv"
    part = cache_path(url, tmp_path / "cache").with_suffix(".csv.part")
    part.parent.mkdir()
    part.symlink_to("/dev/full")  # every write there fails with ENOSPC
    with pytest.raises(IngestError, match="No space left on device") as raised:
        get(url, tmp_path, sleeps)
    assert url in raised.value.description


def test_progress_bar_goes_to_stderr(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    site.files["/a.csv"] = BODY
    fetch(f"{site.url}/a.csv", cache_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "100%" in err
    assert "200k/200k" in err  # 204,800 bytes in units of 1024


def test_local_paths_and_file_urls_are_used_in_place(tmp_path: Path, sleeps: list) -> None:
    source = tmp_path / "local file.csv"
    source.write_text("x")
    assert get(str(source), tmp_path, sleeps) == source
    assert get(source.as_uri(), tmp_path, sleeps) == source
    with pytest.raises(IngestError, match="no such file"):
        get(str(tmp_path / "absent.csv"), tmp_path, sleeps)


def test_other_schemes_are_refused(tmp_path: Path, sleeps: list) -> None:
    with pytest.raises(IngestError, match="'ftp'"):
        get("ftp://example.org/a.csv", tmp_path, sleeps)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    (root / "data.example.fr" / "api").mkdir(parents=True)
    (root / "data.example.fr" / "api" / "export.csv?lang=fr").write_text("with query")
    (root / "data.example.fr" / "api" / "plain.csv").write_text("without query")
    return root


def test_directory_mirror_keeps_the_query_in_the_file_name(mirror: Path, tmp_path: Path, sleeps: list) -> None:
    path = get("https://data.example.fr/api/export.csv?lang=fr", tmp_path, sleeps, mirror=str(mirror))
    assert path.read_text() == "with query"


def test_directory_mirror_falls_back_to_the_path_without_query(mirror: Path, tmp_path: Path, sleeps: list) -> None:
    path = get("https://data.example.fr/api/plain.csv?lang=fr", tmp_path, sleeps, mirror=mirror.as_uri())
    assert path.read_text() == "without query"


def test_missing_mirror_file_names_what_was_looked_for(mirror: Path, tmp_path: Path, sleeps: list) -> None:
    with pytest.raises(IngestError, match=r"plain\.csv\?x=1, .*plain\.csv\)"):
        get("https://other.example.fr/plain.csv?x=1", tmp_path, sleeps, mirror=str(mirror))


def test_http_mirror_is_downloaded_and_cached(site: Site, tmp_path: Path, sleeps: list) -> None:
    site.files["/data.example.fr/api/export.csv?lang=fr"] = BODY
    path = get("https://data.example.fr/api/export.csv?lang=fr", tmp_path, sleeps, mirror=site.url + "/")
    assert path.read_bytes() == BODY
    assert path.parent == tmp_path / "cache"


def test_open_text_reads_gzip_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress("\ufeffuai;nom\r\n0350122T;École\r\n".encode()))
    with open_text(path) as text:
        assert text.read() == "uai;nom\r\n0350122T;École\r\n"
        assert text.notes() == []


def test_open_text_reads_cp1252_lines_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("uai;nom\n1;École\n".encode() + "2;Collège\n".encode("cp1252") + b"3;Lyc\xc3\xa9e\n")
    with open_text(path) as text:
        assert list(text) == ["uai;nom\n", "1;École\n", "2;Collège\n", "3;Lycée\n"]
        assert text.fallback_lines == [3]
        assert "line 3" in text.notes()[0]


def test_open_text_keeps_what_a_truncated_gzip_holds(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    whole = gzip.compress(b"".join(b"line %d\n" % n for n in range(10_000)))
    path.write_bytes(whole[: len(whole) // 2])
    with open_text(path) as text:
        lines = list(text)
        assert lines[:2] == ["line 0\n", "line 1\n"]
        assert "ends early" in text.notes()[0]


def test_open_text_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"absent\.csv"):
        open_text(tmp_path / "absent.csv")
