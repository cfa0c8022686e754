"""Where the files of the embedded store live, next to the served `<name>.gpkg`.

    <name>.gpkg                      the current version (replaced atomically by each publish)
    <name>.gpkg.<id>.tmp             a version being written (left behind only by a killed run)
    <name>.gpkg.lock                 held while publishing, so two ingests never interleave
    <name>.gpkg.assets/<id>/         files of version <id>: its raster COGs, and `<name>.gpkg`, a hard
                                     link to the version file, so a reader can open that version
                                     again after the next publish replaced `<name>.gpkg`
"""

from __future__ import annotations

import glob
import os


def tmp_file(path: str, version_id: str) -> str:
    """The file a version is written to before it replaces `path`."""
    return f"{path}.{version_id}.tmp"


def leftovers(path: str) -> list[str]:
    """Files of versions whose writing never finished."""
    return glob.glob(glob.escape(path) + ".*.tmp")


def lock_file(path: str) -> str:
    """The file locked while a version is published."""
    return f"{path}.lock"


def assets_root(path: str) -> str:
    """The directory holding one directory per version."""
    return f"{path}.assets"


def assets_dir(path: str, version_id: str) -> str:
    """The directory of one version's files."""
    return os.path.join(assets_root(path), version_id)


def version_file(path: str, version_id: str) -> str:
    """The hard link to one version's GeoPackage, valid as long as the version's directory is kept."""
    return os.path.join(assets_dir(path, version_id), os.path.basename(path))
