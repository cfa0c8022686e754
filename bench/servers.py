"""Our server started exactly as the Procfile serves it, and nginx serving tiles as static files (the ceiling).

The Procfile's `web` line is run by a shell with `PORT` and `WEB_CONCURRENCY` set, as a platform
would; the only change is the bind address, 127.0.0.1 instead of 0.0.0.0, so the bench listens on
loopback only. The Procfile also keeps, commented, the line of the other HTTP server
(`# web (gunicorn): ...`), so both can be measured as a deployment would run them. Like the peers as
the bench runs them, it writes no access log (see docs/scaling.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.clients import STREAM_LIMIT
from bench.processes import Server, free_port, listening_processes, start_server
from bench.workload import SCHOOLS, Api

ROOT = Path(__file__).resolve().parents[1]
OURS = Api(tiles=f"/tiles/{SCHOOLS}/{{z}}/{{x}}/{{y}}.mvt", items=f"/collections/{SCHOOLS}/items", search="/search")
STATIC = Api(tiles=OURS.tiles, items=None)
NGINX_CONF = """worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/vnd.mapbox-vector-tile mvt; }}
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{
            gzip_static always;
            gunzip off;
            add_header Cache-Control "public, max-age=3600";
        }}
    }}
}}
"""


_WEB = re.compile(r"(?:web|# web \((\w+)\)):\s*(\S+.*)")


def procfile_commands(procfile: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's `web` command, then the commented ones, keyed by the server they run, bound to loopback.

    >>> import tempfile; path = Path(tempfile.mkdtemp()) / "Procfile"
    >>> _ = path.write_text("web: granian --host 0.0.0.0 app\\n# web (gunicorn): gunicorn -b 0.0.0.0:$PORT")
    >>> procfile_commands(path)
    {'granian': 'granian --host 127.0.0.1 app', 'gunicorn': 'gunicorn -b 127.0.0.1:$PORT'}
    """
    found = [_WEB.fullmatch(line.strip()) for line in procfile.read_text().splitlines()]
    commands = {match.group(2).split()[0]: match.group(2).replace("0.0.0.0", "127.0.0.1")
                for match in sorted(filter(None, found), key=lambda match: match.group(1) is not None)}
    if not commands:
        raise RuntimeError(f"{procfile} has no web process")
    return commands


def procfile_command(procfile: Path = ROOT / "Procfile", server: str | None = None) -> str:
    """The Procfile's `web` command (or the commented one running `server`), bound to loopback."""
    commands = procfile_commands(procfile)
    if server is None:
        return next(iter(commands.values()))
    if server not in commands:
        raise RuntimeError(f"{procfile} has no web line running {server} (it has {', '.join(commands)})")
    return commands[server]


def start_ours(name: str, database: str, *, workers: int, logs: Path, server: str | None = None,
               settings: Mapping[str, str] | None = None) -> Server:
    """Our server on `database` (a .gpkg path or a postgresql:// URL), as the Procfile runs it (with `server`).

    `settings` are more `ECARTO_*` variables (the shared cache's, in `bench.scale`).
    """
    port = free_port()
    env = {**os.environ, **(settings or {}), "PORT": str(port), "WEB_CONCURRENCY": str(workers),
           "ECARTO_DATABASE": database,
           "ECARTO_MAX_LIMIT": str(STREAM_LIMIT),  # so one response may stream every school
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = ["sh", "-c", "exec " + procfile_command(server=server)]
    started = start_server(name, command, port=port, env=env, log=logs / f"{name}.log", ready="/health", cwd=ROOT)
    deadline = time.monotonic() + 90
    while listening_processes(started.process.pid, port) < workers:  # every worker warms its own cache
        if time.monotonic() > deadline:
            started.stop()
            raise RuntimeError(f"{name}: fewer than {workers} workers listen after 90 s; see {started.log}")
        time.sleep(0.1)
    return started


def have_nginx() -> bool:
    """True when nginx is installed (Debian's `nginx-light` is enough)."""
    return _nginx() is not None


def write_static(root: Path, tiles: Iterable[tuple[str, bytes]]) -> int:
    """Lay tiles out as files under `root/www` (each `path.gz` holds the gzipped bytes); return how many."""
    www = root / "www"
    shutil.rmtree(www, ignore_errors=True)
    count = 0
    for path, gzipped in tiles:
        target = www / (path.lstrip("/") + ".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzipped)
        count += 1
    return count


def start_nginx(root: Path, *, workers: int, logs: Path) -> Server:
    """nginx serving `root/www` (written by `write_static`) with `gzip_static`, the way a CDN or cache would."""
    port = free_port()
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, root=root.resolve(), port=port))
    command = [_nginx(), "-p", str(root.resolve()), "-c", str(conf.resolve())]
    return start_server("nginx-static", command, port=port, env=os.environ, log=logs / "nginx-static.log")


def nginx_version() -> str:
    """nginx's version, as `nginx -v` prints it."""
    done = subprocess.run([_nginx(), "-v"], capture_output=True, text=True)
    return done.stderr.strip().rsplit("/", 1)[-1]


def _nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
