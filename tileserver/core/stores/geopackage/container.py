"""The OGC GeoPackage 1.3 core: what makes a SQLite file open in GDAL and QGIS and pass validate_gpkg.

Only the parts we use: the core tables, feature tables in EPSG:4326 with their R-tree spatial index
(extension `gpkg_rtree_index`, with the triggers the spec requires so an edited copy stays right),
attribute tables, and the registration of our own `ecarto_*` extension.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pyproj import CRS

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10300  # GeoPackage 1.3.0
GEOGRAPHIC = 4326
MERCATOR = 3857
RTREE_DEFINITION = "http://www.geopackage.org/spec130/#extension_rtree"

_CORE = """
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
"""

# GeoPackage 1.3, annex F.3: keep rtree_<t>_<c> in step with edits (ST_* are GDAL/QGIS functions).
_RTREE_TRIGGERS = """
CREATE TRIGGER "{raw}_insert" AFTER INSERT ON {t}
  WHEN (NEW.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c}))
BEGIN
  INSERT OR REPLACE INTO {rtree} VALUES (NEW.{i},
    ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}));
END;
CREATE TRIGGER "{raw}_update1" AFTER UPDATE OF {c} ON {t}
  WHEN OLD.{i} = NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))
BEGIN
  INSERT OR REPLACE INTO {rtree} VALUES (NEW.{i},
    ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}));
END;
CREATE TRIGGER "{raw}_update2" AFTER UPDATE OF {c} ON {t}
  WHEN OLD.{i} = NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))
BEGIN
  DELETE FROM {rtree} WHERE id = OLD.{i};
END;
CREATE TRIGGER "{raw}_update3" AFTER UPDATE ON {t}
  WHEN OLD.{i} != NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))
BEGIN
  DELETE FROM {rtree} WHERE id = OLD.{i};
  INSERT OR REPLACE INTO {rtree} VALUES (NEW.{i},
    ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}));
END;
CREATE TRIGGER "{raw}_update4" AFTER UPDATE ON {t}
  WHEN OLD.{i} != NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))
BEGIN
  DELETE FROM {rtree} WHERE id IN (OLD.{i}, NEW.{i});
END;
CREATE TRIGGER "{raw}_delete" AFTER DELETE ON {t} WHEN OLD.{c} NOT NULL
BEGIN
  DELETE FROM {rtree} WHERE id = OLD.{i};
END;
"""


def quote(name: str) -> str:
    """An SQL identifier, quoted so any name is safe inside a statement.

    >>> quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def rtree_name(table: str, column: str) -> str:
    """The spec's name for the spatial index of a geometry column."""
    return f"rtree_{table}_{column}"


def search_table(table: str) -> str:
    """Our name for the trigram table over a feature table's folded text columns."""
    return f"{table}_search"


def create_core(conn: sqlite3.Connection) -> None:
    """Mark the file as a GeoPackage 1.3 and create the core tables with the required SRS rows."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {USER_VERSION}")
    for statement in _CORE.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany(
        "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian CRS"),
            ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic CRS"),
            *(_epsg(code) for code in (GEOGRAPHIC, MERCATOR)),
        ],
    )


def _epsg(code: int) -> tuple:
    """The gpkg_spatial_ref_sys row of an EPSG code, with the WKT GDAL writes."""
    crs = CRS.from_epsg(code)
    return (crs.name, code, "EPSG", code, crs.to_wkt("WKT1_GDAL"), crs.name)


def register_features(
    conn: sqlite3.Connection,
    table: str,
    *,
    geometry_type: str,
    extent: tuple[float, float, float, float],
    description: str,
    stamp: str,
) -> None:
    """Declare a feature table (geometry column `geom`, EPSG:4326) in gpkg_contents and geometry columns."""
    conn.execute(
        "INSERT INTO gpkg_contents VALUES (?, 'features', ?, ?, ?, ?, ?, ?, ?, ?)",
        (table, table, description, stamp, *extent, GEOGRAPHIC),
    )
    conn.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
        (table, geometry_type.upper(), GEOGRAPHIC),
    )


def register_attributes(conn: sqlite3.Connection, table: str, *, description: str, stamp: str) -> None:
    """Declare a plain table in gpkg_contents, so GDAL lists it instead of warning about it."""
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
        "VALUES (?, 'attributes', ?, ?, ?)",
        (table, table, description, stamp),
    )


def register_extension(conn: sqlite3.Connection, table: str, column: str, name: str, definition: str) -> None:
    """Declare an extension used by a column (readers may ignore a write-only one)."""
    conn.execute(
        "INSERT INTO gpkg_extensions VALUES (?, ?, ?, ?, 'write-only')", (table, column, name, definition)
    )


def create_rtree(conn: sqlite3.Connection, table: str, rows: Iterable[tuple]) -> None:
    """Build the spatial index of `table.geom` from (fid, minx, maxx, miny, maxy) rows, with its triggers."""
    rtree = rtree_name(table, "geom")
    conn.execute(f"CREATE VIRTUAL TABLE {quote(rtree)} USING rtree(id, minx, maxx, miny, maxy)")
    conn.executemany(f"INSERT INTO {quote(rtree)} VALUES (?, ?, ?, ?, ?)", rows)
    triggers = _RTREE_TRIGGERS.format(
        raw=rtree.replace('"', '""'), rtree=quote(rtree), t=quote(table), c="geom", i="fid"
    )
    for statement in triggers.split("END;"):
        if statement.strip():
            conn.execute(statement + "END;")
    register_extension(conn, table, "geom", "gpkg_rtree_index", RTREE_DEFINITION)
