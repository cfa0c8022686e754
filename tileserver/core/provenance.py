"""Where published data came from, as the public may see it: source URLs and file names, no server paths.

An ingest reads local files (a mirror, the download cache, a path in the manifest); a report naming
them would show every client how the server's disk is laid out. Reports store `source_name`, and
`public_report` cleans the reports that older versions stored with absolute paths.
"""

from __future__ import annotations

import copy
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

PUBLIC_SCHEMES = ("http", "https", "ftp")


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


def public_report(report: dict) -> dict:
    """An ingest report with every `file` given as `source_name` (reports stored before kept paths).

    >>> public_report({"datasets": [{"file": "/srv/x.csv", "rejections": [{"file": "/srv/x.csv", "line": 2}]}]})
    {'datasets': [{'file': 'x.csv', 'rejections': [{'file': 'x.csv', 'line': 2}]}]}
    """
    cleaned = copy.deepcopy(report)
    datasets = cleaned.get("datasets", [])
    for dataset in datasets.values() if isinstance(datasets, dict) else datasets:
        if isinstance(dataset, dict):
            for entry in (dataset, *dataset.get("rejections", [])):
                if isinstance(entry.get("file"), str):
                    entry["file"] = source_name(entry["file"])
    return cleaned
