"""Vector tiles at national scale (slow): the real ingest once per store, the 500 KB budget, every school counted.

Run with `pytest -m slow tests/test_tiles_national.py -s` to see the size table of each store.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from bench.tiles import BUDGET_KB, size_table, sizes
from tests.support.tiletools import decode
from tileserver.core.coverage import covered, geometries
from tileserver.core.dataset import COLLECTIONS, SCHOOLS
from tileserver.core.settings import Settings
from tileserver.core.store import TileFilter
from tileserver.core.stores import open_store

pytestmark = [pytest.mark.slow, pytest.mark.national]



@pytest.fixture(scope="module", params=["national_gpkg", "national_postgis"])
def national(request):
    """The current snapshot of the national data (sources/local.toml), in each store."""
    ingested = request.getfixturevalue(request.param)
    store = open_store(ingested.url, Settings(database=ingested.url))
    yield store.current()
    store.close()


def test_no_tile_of_every_layer_is_over_the_budget(national):
    found = sizes(national, COLLECTIONS, sample=200)
    print(f"\n{national.version.id}, every layer in each tile:\n{size_table(found)}")
    assert sorted(found) == list(range(15))
    over = {z: s for z, s in found.items() if s["max_kb"] > BUDGET_KB}
    assert not over


@pytest.mark.parametrize("z", [0, 3, 6])
def test_the_clusters_of_a_zoom_count_every_school(national, z):
    info = next(i for i in national.collections() if i.id == SCHOOLS)
    schools = geometries(national, info)
    total = 0
    for tile in covered(national, [info], z, z)[z].tiles():
        data = national.tile(tile, layers=[SCHOOLS], filters=TileFilter())
        total += sum(f["properties"]["point_count"] for f in decode(data).get(SCHOOLS, []))
    assert total == info.count == len(schools)
    assert np.isfinite(shapely.get_coordinates(schools)).all()
