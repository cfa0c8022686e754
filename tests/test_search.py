"""Text search on both stores: folded names on an index, CQL2 CASEI/ACCENTI through it, `q=` on items, `/search`.

Expected answers are computed here in Python (`textfold`, a LIKE written as a regular expression), so
both stores are held to the same oracle, and the two stores are compared with each other.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import sqlite3
from urllib.parse import quote, urlsplit

import numpy as np
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, box

from tests.support.postgis import POSTGIS_ADMIN_URL, create_database, drop_database
from tileserver.core import cql, search, textfold, textsearch
from tileserver.core.dataset import Clusters, Dataset, Field, Layer
from tileserver.core.errors import BadRequest
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores.geopackage import GeoPackageStore
from tileserver.core.stores.postgis import PostGISStore
from tileserver.web.app import create_app

# uai, nom, nom_commune, effectif, lon, lat
SCHOOLS = [
    ("0350001L", "Lycée Émile Zola", "Rennes", 1200, -1.68, 48.11),
    ("0350002M", "LYCEE EMILE ZOLA", "Varennes", 300, -1.6, 48.1),
    ("0350003N", "École élémentaire Jean Moulin", "Saint-Étienne", 250, 4.39, 45.43),
    ("0350004P", "École Jean-Moulin", "Rennes", 180, -1.66, 48.12),
    ("0350005R", "Collège de Varennes", "Cesson-Sévigné", 600, -1.6, 48.12),
    ("0350006S", "Collège Saint-Exupéry", "Évry", None, 2.44, 48.63),
    ("0350007T", "Rennes", "Rennes", 90, -1.67, 48.1),
    ("0350008U", "Lycée Œuvre de l’Étoile", "Steenvoorde", 410, 2.58, 50.81),
    ("0350009V", "EREA 100% réussite_1", "Rennes", 40, -1.65, 48.13),
]
# code, nom, code_departement, etablissements, box
COMMUNES = [
    ("35238", "Rennes", "35", 201, (-1.75, 48.05, -1.6, 48.15)),
    ("11309", "Rennes-le-Château", "11", 3, (2.25, 42.9, 2.3, 42.95)),
    ("25489", "Rennes-sur-Loue", "25", 1, (5.85, 47.0, 5.9, 47.05)),
    ("35240", "Le Rheu Rennes", "35", 12, (-1.8, 48.08, -1.75, 48.13)),
    ("36230", "Varennes", "36", 5, (1.8, 46.6, 1.85, 46.65)),
    ("42218", "Saint-Étienne", "42", 150, (4.3, 45.4, 4.45, 45.48)),
    ("91228", "Évry", "91", 40, (2.4, 48.6, 2.47, 48.65)),
    ("89162", "Évry", "89", 1, (3.25, 48.0, 3.3, 48.05)),
    ("59580", "Steenvoorde", "59", 6, (2.55, 50.78, 2.62, 50.83)),
]
DEPARTEMENTS = [("35", "Ille-et-Vilaine", 1500, (-2.0, 47.6, -1.0, 48.7)), ("42", "Loire", 700, (3.7, 45.2, 4.7, 46.3))]

FOLDS = {"": lambda t: t, "CASEI": textfold.casei, "ACCENTI": textfold.accenti,
         "ACCENTI(CASEI": lambda t: textfold.accenti(textfold.casei(t))}


def search_dataset() -> Dataset:
    """Schools, communes and départements whose names differ only by case, accents or punctuation."""
    fields = [Field("uai", "string"), Field("nom", "string"), Field("nom_commune", "string"),
              Field("effectif", "integer")]
    schools = Layer("etablissements", "Établissements", "", "Point", "uai", fields, [s[0] for s in SCHOOLS],
                    {f.name: [s[i] for s in SCHOOLS] for i, f in enumerate(fields)},
                    np.array([Point(s[4], s[5]) for s in SCHOOLS], dtype=object))
    communes = _territories("communes", COMMUNES, [Field("code_departement", "string")])
    departements = _territories("departements", [(c, n, e, b) for c, n, e, b in DEPARTEMENTS], [])
    one = {"z": [0], "cx": [0], "cy": [0], "type": ["ecole"], "statut": ["public"], "n": [1], "sx": [0.0],
           "sy": [0.0]}
    clusters = Clusters({k: np.array(v, dtype=object if k in ("type", "statut") else None) for k, v in one.items()},
                        sums=[])
    return Dataset({"etablissements": schools, "communes": communes, "departements": departements}, clusters,
                   cluster_maxzoom=8, cluster_cells=4, catalogue=[], report={})


def _territories(level: str, rows: list[tuple], parents: list[Field]) -> Layer:
    """A territory layer from (code, nom, parent codes..., etablissements, box) rows."""
    fields = [Field("code", "string"), Field("nom", "string"), *parents, Field("etablissements", "integer")]
    columns = {f.name: [row[i] for row in rows] for i, f in enumerate(fields)}
    shapes = np.array([MultiPolygon([box(*row[-1])]) for row in rows], dtype=object)
    return Layer(level, level.capitalize(), "", "MultiPolygon", "code", fields, [r[0] for r in rows], columns, shapes)


@pytest.fixture(scope="module", params=["geopackage", "postgis"])
def store(request, tmp_path_factory, postgis_template):
    """The search dataset published to each store in turn."""
    folder = tmp_path_factory.mktemp("search")
    settings = Settings(version_check_seconds=0, assets_dir=str(folder / "assets"))
    if request.param == "geopackage":
        store = GeoPackageStore(str(folder / "search.gpkg"), settings)
    else:
        name = f"ecarto_test_search_{os.getpid()}"
        store = PostGISStore(create_database(name, template=postgis_template), settings)
    store.publish(search_dataset())
    yield store
    store.close()
    if request.param == "postgis":
        with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
            drop_database(admin, name)


@pytest.fixture(scope="module")
def client(store):
    return create_app(Settings(database=store.url), store=store).test_client()


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return json.loads(response.get_data(as_text=True))


def ids(client, url: str) -> list[str]:
    return [f["id"] for f in get_json(client, url)["features"]]


def like(text: str, pattern: str) -> bool:
    """CQL2 LIKE in Python: `%` any run, `_` one character, `\\` escapes."""
    regex = "".join(".*" if p is None else "." if p == "" else re.escape(p) for p in cql.like_pattern(pattern))
    return re.fullmatch(regex, text, re.DOTALL) is not None


# --- the search key and its pattern, without a database ------------------------------------------------

@pytest.mark.parametrize("module", [textfold, textsearch, search])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_every_fold_of_a_text_has_the_text_s_search_key():
    for c in map(chr, [*range(0x20, 0x530), *range(0x2000, 0x2070)]):
        text = f"a{c}b"
        assert textfold.search_key(textfold.casei(text)) == textfold.search_key(text), repr(c)
        assert textfold.search_key(textfold.accenti(text)) == textfold.search_key(text), repr(c)


TEXT = st.text(alphabet="aAéÉeEœŒ -_'%İi", max_size=8)


@given(text=TEXT, pattern=st.text(alphabet="aAéÉeEœŒ -_'%İi\\", max_size=8), fold=st.sampled_from(list(FOLDS)))
def test_a_folded_like_match_is_always_a_search_key_match(text, pattern, fold):
    """The index narrows, it never loses a row: whatever matches folded also matches by search key."""
    folded = FOLDS[fold]
    if like(folded(text), folded(pattern)):
        key_pattern = cql.search_pattern(cql.like_pattern(folded(pattern)))
        regex = "".join(".*" if p is None else re.escape(p) for p in key_pattern)
        assert re.fullmatch(regex, textfold.search_key(text), re.DOTALL), (text, pattern, key_pattern)


def test_q_terms_are_comma_separated_search_keys():
    assert textsearch.terms("Jean-Moulin ,  ÉVRY,évry") == ("jean moulin", "evry")
    for bad in ("", " , ", "---", ",".join("abcdefghijk")):
        with pytest.raises(BadRequest):
            textsearch.terms(bad)


def test_a_folded_comparison_on_a_searchable_property_goes_through_its_index():
    info = next(c for c in _collections() if c.id == "etablissements")
    parsed = cql_text("ACCENTI(CASEI(nom)) LIKE ACCENTI(CASEI('%Jean Moulin%'))")
    text, params = cql.to_sqlite(info, parsed, rtree="r", search="etablissements_search")
    assert "MATCH" in text and "nom_folded : (\"jean moulin\")" in params
    condition, params = cql.to_postgis(info, parsed)
    assert '"nom_folded" LIKE' in condition.as_string(None) and "%jean moulin%" in params


def _collections():
    from tileserver.core.store import CollectionInfo, collection_meta

    return [CollectionInfo.from_meta(collection_meta(layer, layer.geometries[0].bounds))
            for layer in search_dataset().layers.values()]


def cql_text(text: str):
    from tileserver.core import crs
    from tileserver.web import filters

    return filters.parse(text, "cql2-text", crs.CRS84, max_length=10_000, max_depth=20)


# --- the stores: hidden columns, folded comparisons ------------------------------------------------------

def test_folded_columns_are_no_property(client):
    for collection in ("etablissements", "communes"):
        page = get_json(client, f"/collections/{collection}/items?limit=100")
        hidden = ("_folded", "_casei", "_accenti")
        assert not [name for f in page["features"] for name in f["properties"] if name.endswith(hidden)]
        assert "nom_folded" not in get_json(client, f"/collections/{collection}/queryables")["properties"]
        for url in (f"/collections/{collection}/items?sortby=nom_folded",
                    f"/collections/{collection}/items?properties=nom_folded",
                    f"/collections/{collection}/items?filter=nom_folded%3D%27rennes%27",
                    f"/collections/{collection}/items?nom_folded=rennes",
                    f"/collections/{collection}/items?filter=nom_casei_accenti%3D%27rennes%27"):
            assert client.get(url).status_code == 400, url
    one = get_json(client, "/collections/etablissements/items/0350001L")
    assert "nom_folded" not in one["properties"] and one["properties"]["nom"] == "Lycée Émile Zola"


FILTERS = [  # (fold, operator, literal): each compared as the CQL2 text `fold(nom) operator fold(literal)`
    ("ACCENTI(CASEI", "LIKE", "%jean moulin%"),
    ("ACCENTI(CASEI", "LIKE", "%JEAN-MOULIN%"),
    ("ACCENTI(CASEI", "LIKE", "lycee emile%"),
    ("CASEI", "LIKE", "lycée%"),
    ("CASEI", "LIKE", "lycee%"),
    ("ACCENTI", "LIKE", "Lycee%"),
    ("ACCENTI", "LIKE", "%Oeuvre%"),
    ("CASEI", "LIKE", "%œuvre de l’étoile"),
    ("CASEI", "LIKE", "%100\\%%"),
    ("CASEI", "LIKE", "%réussite\\_1"),
    ("CASEI", "LIKE", "_cole %"),
    ("CASEI", "=", "LYCÉE ÉMILE ZOLA"),
    ("ACCENTI(CASEI", "=", "lycee emile zola"),
    ("ACCENTI", "=", "Ecole Jean-Moulin"),
    ("", "=", "Rennes"),
    ("", "LIKE", "%Jean%"),
    ("CASEI", "LIKE", "%ren%"),
]


@pytest.mark.parametrize(("fold", "operator", "literal"), FILTERS)
def test_folded_comparisons_find_exactly_what_the_fold_says(client, fold, operator, literal):
    folded = FOLDS[fold]
    closing = ")" * fold.count("(") + ")" if fold else ""
    opening = f"{fold}(" if fold else ""
    escaped = literal.replace("'", "''")
    text = f"{opening}nom{closing} {operator} {opening}'{escaped}'{closing}"
    url = f"/collections/etablissements/items?limit=100&filter={quote(text)}"
    test = (lambda name: like(folded(name), folded(literal))) if operator == "LIKE" else (
        lambda name: folded(name) == folded(literal))
    assert sorted(ids(client, url)) == sorted(s[0] for s in SCHOOLS if test(s[1])), text


def test_commune_names_are_searchable_too(client):
    text = quote("ACCENTI(CASEI(nom_commune)) = 'saint etienne'")
    assert ids(client, f"/collections/etablissements/items?filter={text}") == []
    text = quote("ACCENTI(CASEI(nom_commune)) = ACCENTI(CASEI('SAINT-ÉTIENNE'))")
    assert ids(client, f"/collections/etablissements/items?filter={text}") == ["0350003N"]


# --- q= on items ---------------------------------------------------------------------------------------

def test_q_ranks_whole_name_then_start_then_word_then_anywhere_then_size(client):
    page = get_json(client, "/collections/communes/items?q=RENNES")
    assert [f["properties"]["nom"] for f in page["features"]] == [
        "Rennes", "Rennes-le-Château", "Rennes-sur-Loue", "Le Rheu Rennes", "Varennes"]
    assert page["numberMatched"] == 5


def test_q_terms_are_ored_and_words_of_a_term_keep_their_order(client):
    assert ids(client, "/collections/communes/items?q=evry,steenvoorde") == ["91228", "59580", "89162"]
    assert ids(client, "/collections/communes/items?q=saint%20%C3%A9tienne") == ["42218"]
    assert ids(client, "/collections/communes/items?q=etienne%20saint") == []


def test_q_finds_schools_by_name_first_then_by_commune(client):
    found = ids(client, "/collections/etablissements/items?q=rennes&limit=100")
    assert found == ["0350007T", "0350005R", "0350001L", "0350002M", "0350004P", "0350009V"]


def test_q_with_sortby_follows_sortby(client):
    found = ids(client, "/collections/etablissements/items?q=rennes&sortby=-effectif&limit=100")
    assert found == ["0350001L", "0350005R", "0350002M", "0350004P", "0350007T", "0350009V"]


def test_q_combines_with_filters_and_pages(client):
    first = get_json(client, "/collections/communes/items?q=rennes&limit=2")
    assert [f["id"] for f in first["features"]] == ["35238", "11309"]
    assert any(link["rel"] == "next" for link in first["links"])
    assert ids(client, "/collections/communes/items?q=rennes&offset=2&limit=2") == ["25489", "35240"]
    assert ids(client, "/collections/communes/items?q=rennes&code_departement=35") == ["35238", "35240"]


@pytest.mark.parametrize("q", ["", ",", "--", "a" * 201])
def test_a_q_without_terms_or_too_long_is_a_400(client, q):
    get_json(client, f"/collections/communes/items?q={quote(q)}", 400)


# --- /search -------------------------------------------------------------------------------------------

def test_search_answers_the_documented_shape(client):
    body = get_json(client, "/search?q=ren")
    assert set(body) == {"query", "results"} and body["query"] == "ren"
    first = body["results"][0]
    assert set(first) == {"collection", "id", "name", "label", "bbox", "href"}
    assert first == {"collection": "communes", "id": "35238", "name": "Rennes", "label": "Rennes (35)",
                     "bbox": [-1.75, 48.05, -1.6, 48.15],
                     "href": "http://localhost/collections/communes/items/35238"}
    assert client.get(urlsplit(first["href"]).path).status_code == 200


def test_search_ranks_territories_first_on_an_equal_rank_then_larger_first(client):
    results = get_json(client, "/search?q=rennes&limit=20")["results"]
    assert [(r["collection"], r["id"]) for r in results] == [
        ("communes", "35238"), ("etablissements", "0350007T"),  # whole name: territory first
        ("communes", "11309"), ("communes", "25489"),  # start of the name, larger first
        ("communes", "35240"),  # start of a word
        ("communes", "36230"), ("etablissements", "0350005R"),  # anywhere
        ("etablissements", "0350001L"), ("etablissements", "0350002M"), ("etablissements", "0350004P"),
        ("etablissements", "0350009V"),  # in the commune's name only, larger first
    ]
    assert [r["label"] for r in results[:2]] == ["Rennes (35)", "Rennes (Rennes)"]


def test_search_limit_keeps_the_best(client):
    assert [r["id"] for r in get_json(client, "/search?q=rennes&limit=3")["results"]] == ["35238", "0350007T", "11309"]


def test_search_folds_case_accents_and_punctuation(client):
    results = get_json(client, "/search?q=EVRY")["results"]
    assert [(r["id"], r["label"]) for r in results[:2]] == [("91228", "Évry (91)"), ("89162", "Évry (89)")]
    assert [r["id"] for r in get_json(client, "/search?q=jean%20moul")["results"]] == ["0350003N", "0350004P"]
    assert [r["id"] for r in get_json(client, "/search?q=l%27etoile")["results"]] == ["0350008U"]
    assert get_json(client, "/search?q=zz")["results"] == []


def test_search_finds_codes(client):
    assert [r["id"] for r in get_json(client, "/search?q=0350008u")["results"]] == ["0350008U"]
    first = get_json(client, "/search?q=35")["results"][0]
    assert (first["collection"], first["label"]) == ("departements", "Ille-et-Vilaine (35)")


@pytest.mark.parametrize("url", ["/search", "/search?q=r", "/search?q=%20r%20", f"/search?q={'a' * 101}",
                                 "/search?q=ren&limit=0", "/search?q=ren&limit=51", "/search?q=ren&limit=x",
                                 "/search?q=ren&q=rennes", "/search?q=ren&f=html", "/search?q=---"])
def test_search_refuses_bad_input_with_a_400(client, url):
    body = get_json(client, url, 400)
    assert set(body) == {"code", "description"}


def test_search_and_q_are_declared(client):
    api = get_json(client, "/api")
    assert "/search" in api["paths"]
    items = api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    assert "q" in [p["name"] for p in items]
    assert "http://www.opengis.net/spec/ogcapi-features-9/1.0/conf/features-text-search" in get_json(
        client, "/conformance")["conformsTo"]


def test_the_index_serves_the_search(store):
    """The trigram table holds the folded names and a phrase query finds a name by infix."""
    if not isinstance(store, GeoPackageStore):
        with psycopg.connect(store.url) as conn:
            indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%folded%'")]
        assert any("gin_trgm_ops" in i and "nom_folded" in i for i in indexes)
        return
    with sqlite3.connect(store.url) as conn:
        rows = conn.execute("SELECT rowid FROM etablissements_search WHERE etablissements_search MATCH "
                            "'nom_folded : \"mile zo\"' ORDER BY rowid").fetchall()
    assert rows == [(1,), (2,)]


def test_both_stores_search_alike(tmp_path, postgis_url):
    settings = Settings(version_check_seconds=0, assets_dir=str(tmp_path / "assets"))
    stores = [GeoPackageStore(str(tmp_path / "s.gpkg"), settings), PostGISStore(postgis_url, settings)]
    try:
        for s in stores:
            s.publish(search_dataset())
        snapshots = [s.current() for s in stores]
        for text in ("ren", "RENNES", "saint", "evry,loire", "jean moul", "é", "100", "35"):
            gpkg, postgis = (search.search(snap, text, limit=20) for snap in snapshots)
            assert gpkg == postgis, text
            query = FeatureQuery("etablissements", q=textsearch.terms(text), limit=100)
            assert [f.id for f in snapshots[0].query(query).features] == [
                f.id for f in snapshots[1].query(query).features]
    finally:
        for s in stores:
            s.close()


def test_the_search_bench_runs_on_each_store(store):
    """`python -m bench.search` asks every prefix, keystroke and filter and gets a 200 each time (no timing here)."""
    from bench import search as bench

    lines: list[str] = []
    option = "--gpkg" if isinstance(store, GeoPackageStore) else "--postgis"
    bench.main([option, store.url, "--rounds", "1"], say=lines.append)
    assert len(lines) == 4 and "load average" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["search", "search", "CASEI/ACCENTI"]
    assert bench.keystrokes(("jean moul",)) == ["je", "jea", "jean", "jean m", "jean mo", "jean mou", "jean moul"]


def test_folded_columns_stay_out_of_tiles(client):
    from tests.support.tiletools import decode
    from tileserver.core.grid import tile_at
    from tileserver.core.mercator import to_mercator

    tile = tile_at(*to_mercator(-1.68, 48.11), 12)
    response = client.get(f"/tiles/etablissements,communes/{tile.z}/{tile.x}/{tile.y}.mvt")
    layers = decode(response.get_data())
    names = {name for features in layers.values() for f in features for name in f["properties"]}
    hidden = [name for name in names if name.endswith(("_folded", "_casei", "_accenti"))]
    assert {"nom", "nom_commune"} <= names and not hidden, names
