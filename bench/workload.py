"""The requests every server is asked: seeded, drawn where the schools are, the same for all servers.

A map user looks where schools are, so a tile is drawn by picking a school at random and a zoom at
random within the band; a bbox query is a département-sized box around a random school; a single
item is a random school; a CQL2 filter combines a random school's département with one of a few
attribute conditions. The seed fixes every list, so runs on two commits ask the same requests.
Each server spells those requests its own way (`Api`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import psycopg
from psycopg import sql

from bench.features import BOX_HEIGHT, BOX_WIDTH  # the in-process bbox bench's département, for one size
from tileserver.core.grid import BBox, Tile, tile_size
from tileserver.core.mercator import ORIGIN

SCHOOLS = "etablissements"
BANDS = {"low": (0, 5), "mid": (6, 10), "high": (11, 14)}  # inclusive zoom ranges
BBOX_LIMIT = 1000
FILTER_LIMIT = 1000
CONDITIONS = ("type='college'", "fibre=false", "debit_descendant_mbps<8")


DATABASE = "postgresql://postgres@127.0.0.1:5432/ecarto_bench"  # where the bench ingests and reads its lists

@dataclass(frozen=True)
class Sizes:
    """How many distinct requests each list holds."""

    # distinct tiles per band asked once (the low band has fewer than this): a pass of a second or
    # less measured a server's first moments (new database sessions) more than its cache misses
    cold: int
    warm: int  # distinct tiles per band cycled while warm
    queries: int  # bbox boxes, single items, filters


@dataclass(frozen=True)
class Workload:
    """Every request list of a run, in server-neutral terms."""

    version: str
    cold: dict[str, list[Tile]]
    warm: dict[str, list[Tile]]
    boxes: list[BBox]
    schools: list[tuple[str, int]]  # (uai, fid)
    filters: list[str]

    @property
    def schema(self) -> str:
        return f"ecarto_v{self.version}"


@dataclass(frozen=True)
class Api:
    """How one server spells the bench's requests; None where it does not serve that kind."""

    tiles: str | None  # a template with {z}, {x}, {y}
    items: str | None  # the items path of the schools collection
    layer: str = SCHOOLS  # the schools collection's name in its /collections
    by_fid: bool = False  # single items addressed by the integer primary key rather than the UAI
    filter_lang: str = "cql2-text"  # what the server calls CQL2 text (pygeoapi: "cql-text")
    search: str | None = None  # the map's search endpoint (ours only)

    def tile_paths(self, tiles: Sequence[Tile]) -> list[str]:
        return [self.tiles.format(z=t.z, x=t.x, y=t.y) for t in tiles] if self.tiles else []

    def bbox_paths(self, boxes: Sequence[BBox]) -> list[str]:
        return [f"{self.items}?bbox={b.west},{b.south},{b.east},{b.north}&limit={BBOX_LIMIT}"
                for b in boxes] if self.items else []

    def item_paths(self, schools: Sequence[tuple[str, int]]) -> list[str]:
        return [f"{self.items}/{fid if self.by_fid else uai}" for uai, fid in schools] if self.items else []

    def search_paths(self, texts: Sequence[str]) -> list[str]:
        return [f"{self.search}?q={quote(text)}&limit=8" for text in texts] if self.search else []

    def filter_paths(self, filters: Sequence[str]) -> list[str]:
        return [f"{self.items}?filter={quote(f)}&filter-lang={self.filter_lang}&limit={FILTER_LIMIT}"
                for f in filters] if self.items else []


def build(dsn: str, *, seed: int, sizes: Sizes) -> Workload:
    """Draw every list from the schools of the current PostGIS version."""
    version, uai, fid, lon, lat, x, y, departements = _schools(dsn)
    rng = np.random.default_rng(seed)
    cold = {band: school_tiles(rng, x, y, zooms, sizes.cold) for band, zooms in BANDS.items()}
    warm = {band: school_tiles(rng, x, y, zooms, sizes.warm) for band, zooms in BANDS.items()}
    picks = rng.integers(0, len(uai), size=(3, sizes.queries))
    half_w, half_h = BOX_WIDTH / 2, BOX_HEIGHT / 2
    boxes = [BBox(*(round(float(v), 4) for v in (lon[i] - half_w, lat[i] - half_h, lon[i] + half_w,
                                                  lat[i] + half_h))) for i in picks[0]]
    schools = [(uai[i], int(fid[i])) for i in picks[1]]
    filters = [f"code_departement='{departements[i]}' AND {CONDITIONS[n % len(CONDITIONS)]}"
               for n, i in enumerate(picks[2])]
    return Workload(version, cold, warm, boxes, schools, filters)


def current_version(dsn: str) -> str | None:
    """The id of the version PostGIS serves now (None before the first ingest)."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('ecarto.versions')").fetchone()[0]
        if exists is None:
            return None
        row = conn.execute("SELECT id FROM ecarto.versions WHERE current").fetchone()
    return row[0] if row else None


def _schools(dsn: str) -> tuple:
    """The current version id and, per school: uai, fid, lon, lat, x, y (EPSG:3857), département."""
    version = current_version(dsn)
    if version is None:
        raise RuntimeError(f"no published version in {dsn}: run the bench without --no-ingest")
    query = sql.SQL(
        "SELECT uai, fid, ST_X(geom), ST_Y(geom), ST_X(geom3857), ST_Y(geom3857), code_departement"
        " FROM {} WHERE geom IS NOT NULL AND code_departement IS NOT NULL ORDER BY fid"
    ).format(sql.Identifier(f"ecarto_v{version}", SCHOOLS))
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(query).fetchall()
    uai, fid, lon, lat, x, y, departements = zip(*rows, strict=True)
    return (version, list(uai), np.array(fid), np.array(lon), np.array(lat), np.array(x), np.array(y),
            list(departements))


def school_tiles(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, zooms: tuple[int, int], n: int) -> list[Tile]:
    """Up to `n` distinct tiles, each holding a random school at a random zoom of `zooms`, in draw order."""
    draws = max(20 * n, 1000)
    pick = rng.integers(0, len(x), draws)
    z = rng.integers(zooms[0], zooms[1] + 1, draws)
    size = np.array([tile_size(int(k)) for k in range(zooms[1] + 1)])[z]
    side = (1 << z) - 1
    col = np.clip(np.floor((x[pick] + ORIGIN) / size), 0, side).astype(int)
    row = np.clip(np.floor((ORIGIN - y[pick]) / size), 0, side).astype(int)
    distinct = dict.fromkeys(Tile(int(a), int(b), int(c)) for a, b, c in zip(z, col, row, strict=True))
    return list(distinct)[:n]
