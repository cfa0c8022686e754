"""Where published data came from, as the public may see it: source URLs and file names, no server paths.

An ingest reads local files (a mirror, the download cache, a path in the manifest); a report naming
them would show every client how the server's disk is laid out. Reports store `source_name`, and
`public_report` cleans the reports that older versions stored with absolute paths.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

PUBLIC_SCHEMES = ("http", "https", "ftp")
# An absolute path with at least one folder, not the path of a URL (which follows a host name).
_PATH = re.compile(r"(?<![\w.:/-])(?:~|/[\w.-]+)(?:/[\w.-]+)*/([\w.-]+)")


def source_name(source: str) -> str:
    """A web source's URL (without credentials), else only the file's name.

    >>> source_name("https://user:secret@data.education.gouv.fr/export.csv?lang=fr")
    'https://data.education.gouv.fr/export.csv?lang=fr'
    >>> source_name("/srv/ecarto/cache/annuaire.csv.gz"), source_name("file:///srv/a.csv"), source_name("")
    ('annuaire.csv.gz', 'a.csv', '')
    >>> source_name("C:\\\\data\\\\ips.csv")
    'ips.csv'
    """
    parts = urlsplit(source)
    if parts.scheme.lower() in PUBLIC_SCHEMES and parts.hostname:
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=host))
    path = parts.path if parts.scheme.lower() == "file" else source
    return PurePosixPath(path.replace("\\", "/")).name


def without_paths(text: str) -> str:
    """A message with each absolute file path cut to the file's name; URLs are left whole.

    >>> without_paths("/srv/ecarto/cache/ips.csv: missing column 'ips' (see https://data.fr/a/b.csv)")
    "ips.csv: missing column 'ips' (see https://data.fr/a/b.csv)"
    """
    return _PATH.sub(r"\1", text)


def public_report(report: dict) -> dict:
    """An ingest report without server paths: every `file` as `source_name`, paths in messages cut.

    Reports stored by earlier versions kept absolute paths, and error messages quote them.

    >>> public_report({"datasets": [{"file": "/srv/x.csv", "rejections": [{"file": "/srv/x.csv", "line": 2}]}]})
    {'datasets': [{'file': 'x.csv', 'rejections': [{'file': 'x.csv', 'line': 2}]}]}
    >>> public_report({"missing": [{"id": "ips", "reason": "/srv/c/ips.csv: no such file"}]})
    {'missing': [{'id': 'ips', 'reason': 'ips.csv: no such file'}]}
    """
    return _cleaned(report)


def _cleaned(value: object, key: str = "") -> object:
    """`value` with its `file` entries named by `source_name` and every other string without paths."""
    if isinstance(value, dict):
        return {k: _cleaned(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v, key) for v in value]
    if isinstance(value, str):
        return source_name(value) if key == "file" else without_paths(value)
    return value
