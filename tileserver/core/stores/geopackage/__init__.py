"""The embedded store: one OGC GeoPackage file per data version, read with the standard sqlite3.

`GeoPackageStore` publishes and finds the current version; `GeoPackageSnapshot` reads one version.
The file layout is in `layout`, the physical schema in `publish`.
"""

from tileserver.core.stores.geopackage.snapshot import GeoPackageSnapshot
from tileserver.core.stores.geopackage.store import GeoPackageStore

__all__ = ["GeoPackageSnapshot", "GeoPackageStore"]
