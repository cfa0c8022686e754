"""The sources manifest: where each dataset comes from, and the indicator catalogue.

A manifest is TOML. Top-level tables `schools`, `communes`, `epci`, `departements`, `academies`,
`regions` each give a `url` (http(s) URL or local path, `.gz` allowed) and optional `fields`
mappings; `[[indicators]]` entries form the catalogue; `[[rasters]]` entries add GeoTIFFs;
a top-level `surfaces = false` skips the school density and indicator surfaces; an optional
`[history]` table names the COG history (decoupage-administratif `communes.json`) through which
former commune codes of indicator sources reach their current commune.
An unknown table or key is an error naming the closest valid one. The indicator keys are
documented on `Indicator` and in docs/indicators.md.
`${VAR}` and `${VAR:-default}` expand from the environment, and relative paths resolve against
the manifest's folder, so one manifest works from any working directory.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tileserver.core.dataset import SCHOOLS, TERRITORY_LEVELS
from tileserver.core.errors import ConfigError

SOURCE_TABLES = ("schools", *TERRITORY_LEVELS, "history")
OPTIONAL_SOURCES = ("academies", "epci", "history")
TOP_LEVEL = (*SOURCE_TABLES, "indicators", "rasters", "surfaces")
SOURCE_KEYS = ("url", "fields", "history")
THEMES = ("connectivite", "equipement", "services", "experimentations", "contexte")
KINDS = ("number", "boolean", "category", "presence", "ratio")
AGGREGATES = {
    "number": ("mean", "sum", "min", "max", "count"),
    "boolean": ("share", "count"),
    "category": ("count",),
    "presence": ("share", "count"),
    "ratio": ("ratio",),
}
DEFAULT_AGGREGATE = {"number": "mean", "boolean": "share", "category": "count", "presence": "share",
                     "ratio": "ratio"}
COMBINE = ("sum", "mean", "last")
# What the published values are (styles read `kind`): a presence is yes/no, a ratio a number.
PUBLISHED_KIND = {"presence": "boolean", "ratio": "number"}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Source:
    """One dataset to fetch: its URL, column renames, and options for its reader."""

    name: str
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Indicator:
    """One catalogue entry: what a column means, where it comes from, how it aggregates."""

    id: str
    theme: str
    label: str
    source: str
    column: str = ""  # the value column (`presence` needs none, `ratio` has numerator and denominator)
    kind: str = "number"
    unit: str = ""
    key: str = "uai"
    level: str = SCHOOLS
    aggregate: str = ""
    description: str = ""
    main: bool = False  # the theme's headline indicator: styles colour by it
    breaks: tuple[float, ...] = ()  # class limits for choropleths
    palette: str = ""
    true_values: tuple[str, ...] = ("1", "oui", "o", "true", "vrai", "yes", "y")
    false_values: tuple[str, ...] = ("0", "non", "n", "false", "faux", "no")
    latest: str = ""  # a column (e.g. the school year): keep, per key, the row where it is highest
    # `presence`: a row means yes; a school of `applies_to` absent from the source means no.
    applies_to: tuple[str, ...] = ()  # school types the indicator concerns (empty: every school)
    numerator: str = ""  # `ratio`: value = per * numerator / denominator, sum/sum at every level
    denominator: str = ""
    per: float = 100.0
    period: str = ""  # a column of dates or years: only the latest complete period is read...
    combine: str = "last"  # ...its rows per key combined by `sum`, `mean` or `last`
    where: dict[str, str] = field(default_factory=dict)  # keep only rows with these values
    via: str = ""  # a school indicator keyed by the code of the school's territory of this level
    weight: str = ""  # a territory indicator: column weighting its mean when rolled up to upper levels
    aliases: dict[str, str] = field(default_factory=dict)  # source key -> code (`20` -> `2A`)
    producer: str = ""
    source_url: str = ""  # the dataset's page (not the download)
    licence: str = ""

    def __post_init__(self) -> None:
        if not self.aggregate:
            object.__setattr__(self, "aggregate", DEFAULT_AGGREGATE.get(self.kind, ""))

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns holding the value (none for `presence`, two for `ratio`)."""
        if self.kind == "presence":
            return ()
        if self.kind == "ratio":
            return (self.numerator, self.denominator)
        return (self.column, self.weight) if self.weight else (self.column,)

    @property
    def needs(self) -> tuple[str, ...]:
        """Every source column the indicator reads: key, values, period and filters."""
        extra = (self.latest, self.period, *self.where)
        return tuple(dict.fromkeys(c for c in (self.key, *self.columns, *extra) if c))

    def to_dict(self, vintage: str = "") -> dict[str, Any]:
        """The entry as published with a version (styles, legends, sheets and `/indicators` read it)."""
        return {
            "id": self.id, "theme": self.theme, "label": self.label, "unit": self.unit,
            "kind": PUBLISHED_KIND.get(self.kind, self.kind), "source_kind": self.kind, "level": self.level,
            "aggregate": self.aggregate, "description": self.description, "main": self.main,
            "breaks": list(self.breaks), "palette": self.palette, "source": self.source,
            "applies_to": list(self.applies_to), "via": self.via,
            "producer": self.producer, "source_url": self.source_url, "licence": self.licence,
            "vintage": vintage,
        }


@dataclass(frozen=True)
class RasterSource:
    """An external GeoTIFF/COG to serve as raster tiles."""

    id: str
    url: str
    label: str
    unit: str = ""
    band: int = 1
    rescale: tuple[float, float] | None = None
    colormap: str = "viridis"


@dataclass(frozen=True)
class Manifest:
    """A whole manifest, validated."""

    sources: dict[str, Source]
    indicators: list[Indicator]
    rasters: list[RasterSource]
    origin: str
    surfaces: bool = True  # derive density and indicator surfaces from the schools


def default_manifest_path() -> Path:
    """The shipped manifest naming the official sources."""
    return Path(str(resources.files("ingest").joinpath("sources.toml")))


def load_manifest(path: Path | str | None = None) -> Manifest:
    """Read and validate a manifest (the shipped default when `path` is None)."""
    path = Path(path) if path else default_manifest_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sources manifest not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw = _expand(raw, path.parent.resolve())
    _check_keys(f"{path}", raw, TOP_LEVEL, "table")
    sources = {name: _source(name, raw[name], path) for name in SOURCE_TABLES if name in raw}
    missing = [n for n in SOURCE_TABLES if n not in sources and n not in OPTIONAL_SOURCES]
    if missing:
        raise ConfigError(f"{path}: missing source tables: {', '.join(missing)}")
    indicators = [_indicator(entry, path) for entry in raw.get("indicators", [])]
    _check_unique([i.id for i in indicators], "indicator", path)
    rasters = [_raster(entry, path) for entry in raw.get("rasters", [])]
    _check_unique([r.id for r in rasters], "raster", path)
    surfaces = raw.get("surfaces", True)
    if not isinstance(surfaces, bool):
        raise ConfigError(f"{path}: `surfaces` must be true or false")
    return Manifest(sources, indicators, rasters, str(path), surfaces)


def fingerprint(manifest: Manifest) -> str:
    """A hash of what an ingest of `manifest` reads: the manifest, its local files, the ingest code.

    Remote sources count by their URL only (reading them is the download an unchanged run avoids),
    so `ecarto ingest --if-changed` skips a run whose result would be the same for local sources.
    """
    digest = hashlib.sha256()
    locations = [manifest.origin]
    locations += [u for s in manifest.sources.values() for u in (s.url, s.options.get("history")) if u]
    locations += [i.source for i in manifest.indicators] + [r.url for r in manifest.rasters]
    code = sorted(Path(str(resources.files("ingest"))).glob("*.py"))
    for location in [*dict.fromkeys(locations), *map(str, code)]:
        digest.update(location.encode())
        if os.path.isfile(location):
            digest.update(Path(location).read_bytes())
    return digest.hexdigest()


def _expand(value: Any, base: Path) -> Any:
    """Expand `${VAR}` everywhere and resolve relative local paths in `url`/`source` keys."""
    if isinstance(value, dict):
        out = {k: _expand(v, base) for k, v in value.items()}
        for key in ("url", "source", "history"):
            if isinstance(out.get(key), str):
                out[key] = _resolve(out[key], base)
        return out
    if isinstance(value, list):
        return [_expand(v, base) for v in value]
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
    return value


def _resolve(location: str, base: Path) -> str:
    """A URL stays as it is; a relative path becomes absolute from the manifest's folder."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", location, re.I) or os.path.isabs(location):
        return location
    return str((base / location).resolve())


def _source(name: str, raw: Any, path: Path) -> Source:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str) or not raw["url"]:
        raise ConfigError(f"{path}: [{name}] needs a `url`")
    fields = raw.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigError(f"{path}: [{name}.fields] must map names to column names")
    _check_keys(f"{path}: [{name}]", raw, SOURCE_KEYS, "key")
    options = {k: v for k, v in raw.items() if k not in ("url", "fields")}
    return Source(name, raw["url"], dict(fields), options)


def _indicator(raw: Any, path: Path) -> Indicator:
    where = f"{path}: indicator {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[indicators]] entry must be a table")
    _check_keys(where, raw, tuple(Indicator.__dataclass_fields__), "key")
    kind = raw.get("kind", "number")
    _check_choice(where, "kind", kind, KINDS)
    for key in ("id", "theme", "label", "source", *_VALUE_KEYS.get(kind, ("column",))):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}: `{key}` is required")
    if not _ID.match(raw["id"]):
        raise ConfigError(f"{where}: `id` must be lower-case letters, digits and _")
    level = raw.get("level", SCHOOLS)
    aggregate = raw.get("aggregate") or DEFAULT_AGGREGATE[kind]
    _check_choice(where, "theme", raw["theme"], THEMES)
    _check_choice(where, "level", level, (SCHOOLS, *TERRITORY_LEVELS))
    _check_choice(where, "aggregate", aggregate, AGGREGATES[kind])
    _check_choice(where, "combine", raw.get("combine", "last"), COMBINE)
    if raw.get("via"):
        _check_choice(where, "via", raw["via"], TERRITORY_LEVELS)
        if level != SCHOOLS:
            raise ConfigError(f"{where}: `via` joins a school indicator; it needs level = {SCHOOLS!r}")
    for key in ("where", "aliases"):
        if not isinstance(raw.get(key, {}), dict) or not all(isinstance(v, str) for v in raw.get(key, {}).values()):
            raise ConfigError(f"{where}: `{key}` must map names to strings, e.g. {{ type = \"all\" }}")
    values = {**raw, "kind": kind, "level": level, "aggregate": aggregate}
    for key in ("breaks", "true_values", "false_values", "applies_to"):
        if key in values:
            values[key] = tuple(values[key])
    return Indicator(**values)


# The keys holding an indicator's values, by kind (`presence` reads no value column).
_VALUE_KEYS = {"presence": (), "ratio": ("numerator", "denominator")}


def _raster(raw: Any, path: Path) -> RasterSource:
    where = f"{path}: raster {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("id", "url", "label")):
        raise ConfigError(f"{where}: `id`, `url` and `label` are required")
    if not _ID.match(raw["id"]):
        raise ConfigError(f"{where}: `id` must be lower-case letters, digits and _")
    values = dict(raw)
    if "rescale" in values:
        rescale = values["rescale"]
        if not (isinstance(rescale, list) and len(rescale) == 2 and rescale[0] < rescale[1]):
            raise ConfigError(f"{where}: `rescale` must be [min, max] with min < max")
        values["rescale"] = (float(rescale[0]), float(rescale[1]))
    _check_keys(where, values, tuple(RasterSource.__dataclass_fields__), "key")
    return RasterSource(**values)


def _check_choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: `{key}` is {value!r}; expected one of {', '.join(choices)}")


def _check_keys(where: str, raw: dict, valid: tuple[str, ...], what: str) -> None:
    """An unknown key is an error naming the closest valid one (`[[indicator]]` -> `indicators`)."""
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; expected one of {', '.join(valid)}"
            raise ConfigError(f"{where}: unknown {what} `{key}`{hint}")


def _check_unique(ids: list[str], what: str, path: Path) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ConfigError(f"{path}: {what} id {i!r} appears twice")
        seen.add(i)
