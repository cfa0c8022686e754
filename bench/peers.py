"""The peers, TiPg and pygeoapi, each in its own virtual environment, on the same PostGIS tables as ours.

Both are pinned and installed from PyPI by the bench under `var/bench/venvs/` (once; a marker
file records what was installed). Each reads the current version's schema `ecarto_v<id>` directly:
TiPg sees it as `ecarto_v<id>.etablissements`, with the integer primary key `fid` as item id;
pygeoapi gets a generated configuration naming the table, `uai` as item id. Both run two worker
processes, like our Procfile's default, with their defaults otherwise (TiPg compresses responses,
pygeoapi does not; TiPg caps a tile at 10,000 features).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench.processes import Server, free_port, start_server
from bench.workload import SCHOOLS, Api

TIPG = ("tipg==1.6.1", "uvicorn[standard]==0.54.0")
PYGEOAPI = ("pygeoapi==0.21.0", "gunicorn==27.0.1", "psycopg2-binary==2.9.13", "SQLAlchemy==2.1.9",
            "GeoAlchemy2==0.20.0")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def tipg_api(schema: str) -> Api:
    """TiPg's spelling: collections named `schema.table`, tiles under OGC API - Tiles, items by `fid`."""
    collection = f"/collections/{schema}.{SCHOOLS}"
    return Api(tiles=collection + "/tiles/WebMercatorQuad/{z}/{x}/{y}", items=collection + "/items",
               layer=f"{schema}.{SCHOOLS}", by_fid=True)


PYGEOAPI_API = Api(tiles=None, items=f"/collections/{SCHOOLS}/items", filter_lang="cql-text")


def venv(root: Path, name: str, requirements: tuple[str, ...], log: Path) -> Path:
    """A virtual environment holding `requirements`, made (and installed) only when missing or different."""
    home = root / name
    marker = home / "bench-requirements.json"
    if marker.exists() and json.loads(marker.read_text()) == list(requirements):
        return home
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True, stdout=out, stderr=out)
        subprocess.run([str(home / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
                        *requirements], check=True, stdout=out, stderr=out, timeout=900)
    marker.write_text(json.dumps(list(requirements)))
    return home


def start_tipg(home: Path, dsn: str, schema: str, *, workers: int, logs: Path) -> Server:
    """TiPg under uvicorn, publishing every table of the version schema."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": json.dumps([schema]),
           "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    command = [str(home / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log"]
    return start_server("tipg", command, port=port, env=env, log=logs / "tipg.log", ready="/healthz")


def start_pygeoapi(home: Path, dsn: str, schema: str, *, workers: int, logs: Path, root: Path) -> Server:
    """pygeoapi's Flask app under gunicorn with the same workers and threads as ours."""
    port = free_port()
    config = root / "pygeoapi.config.yml"
    properties = _columns(dsn, schema, exclude={"fid", "geom", "geom3857"})
    config.write_text(json.dumps(pygeoapi_config(dsn, schema, port, properties), indent=1))  # JSON is YAML
    openapi = root / "pygeoapi.openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    with open(logs / "pygeoapi-openapi.log", "wb") as out:
        subprocess.run([str(home / "bin" / "pygeoapi"), "openapi", "generate", str(config), "--output-file",
                        str(openapi)], env=env, check=True, stdout=out, stderr=out, timeout=120)
    command = [str(home / "bin" / "gunicorn"), "pygeoapi.flask_app:APP", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", "4"]
    return start_server("pygeoapi", command, port=port, env=env, log=logs / "pygeoapi.log",
                        ready=f"/collections/{SCHOOLS}")


def pygeoapi_config(dsn: str, schema: str, port: int, properties: list[str]) -> dict:
    """A minimal pygeoapi configuration publishing the schools table of `schema`."""
    url = urlsplit(dsn)
    here = f"http://127.0.0.1:{port}"
    return {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": here,
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["fr-FR"],
                   "limits": {"default_items": 10, "max_items": 10000},
                   "map": {"url": here + "/{z}/{x}/{y}.png", "attribution": "none"}},
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "bench", "keywords": ["bench"], "url": here,
                               "terms_of_service": here},
            "license": {"name": "Licence Ouverte 2.0", "url": here},
            "provider": {"name": "bench", "url": here},
            "contact": {"name": "bench"},
        },
        "resources": {SCHOOLS: {
            "type": "collection", "title": "Établissements", "description": "Schools", "keywords": ["schools"],
            "extents": {"spatial": {"bbox": [-180, -90, 180, 90], "crs": CRS84}},
            "providers": [{
                "type": "feature", "name": "PostgreSQL", "id_field": "uai", "table": SCHOOLS, "geom_field": "geom",
                "properties": properties,
                "data": {"host": url.hostname or "127.0.0.1", "port": url.port or 5432,
                         "dbname": url.path.lstrip("/"), "user": url.username or "postgres",
                         "password": url.password or "", "search_path": [schema, "public"]},
            }],
        }},
    }


def _columns(dsn: str, schema: str, *, exclude: set[str]) -> list[str]:
    """The schools table's columns but `exclude` (pygeoapi would try to serialise `geom3857` as a property)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                            " AND table_name = %s ORDER BY ordinal_position", [schema, SCHOOLS]).fetchall()
    return [name for name, in rows if name not in exclude]


def installed_version(home: Path, package: str) -> str:
    """The version of `package` in a bench virtual environment."""
    done = subprocess.run([str(home / "bin" / "python"), "-c",
                           f"import importlib.metadata as m; print(m.version({package!r}))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"
