"""The PostGIS store: one schema per data version, a pointer row switched in one transaction."""

from tileserver.core.stores.postgis.roles import grant_read_only
from tileserver.core.stores.postgis.snapshot import PostGISSnapshot
from tileserver.core.stores.postgis.store import PostGISStore

__all__ = ["PostGISSnapshot", "PostGISStore", "grant_read_only"]
