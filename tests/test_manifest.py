"""The sources manifest: defaults, expansion, and clear errors for every mistake."""

from pathlib import Path

import pytest

from ingest.manifest import load_manifest
from tileserver.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
[schools]
url = "schools.csv"
[communes]
url = "https://example.org/communes.geojson.gz"
[departements]
url = "${DATA_DIR:-/srv/data}/departements.geojson"
[regions]
url = "/abs/regions.geojson"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_manifest_names_the_official_sources():
    manifest = load_manifest()
    assert manifest.sources["schools"].url.startswith("https://data.education.gouv.fr/")
    assert "fr-en-annuaire-education" in manifest.sources["schools"].url
    assert {"communes", "epci", "departements", "academies", "regions"} <= set(manifest.sources)
    assert any("fr-en-ips-ecoles-ap2022" in i.source for i in manifest.indicators)


def test_local_manifest_reads_the_shared_data(monkeypatch):
    monkeypatch.setenv("ECARTO_DATA", "/data/here")
    manifest = load_manifest(REPO / "sources" / "local.toml")
    assert manifest.sources["schools"].url == "/data/here/synthetic/annuaire-education-synthetique.csv.gz"
    themes = {i.theme for i in manifest.indicators if i.main}
    assert themes == {"connectivite", "equipement", "services", "experimentations"}


def test_relative_paths_resolve_against_the_manifest_and_variables_expand(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_DIR", raising=False)
    manifest = load_manifest(write(tmp_path, MINIMAL))
    assert manifest.sources["schools"].url == str(tmp_path / "schools.csv")
    assert manifest.sources["communes"].url == "https://example.org/communes.geojson.gz"
    assert manifest.sources["departements"].url == "/srv/data/departements.geojson"
    monkeypatch.setenv("DATA_DIR", "/elsewhere")
    assert load_manifest(write(tmp_path, MINIMAL)).sources["departements"].url == "/elsewhere/departements.geojson"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[indicators]]\nid = "x"\ntheme = "meteo"\nlabel = "X"\nsource = "a.csv"\ncolumn = "x"\n', "theme"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a.csv"\n', "`column` is required"),
        ('[[indicators]]\nid = "Bad Id"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\n', "`id`"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\n'
         'kind = "boolean"\naggregate = "mean"\n', "aggregate"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\ncolour = 1\n',
         "unknown key `colour`"),
        ('[[rasters]]\nid = "r"\nurl = "r.tif"\nlabel = "R"\nrescale = [5, 1]\n', "rescale"),
    ],
)
def test_mistakes_are_named(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_manifest(write(tmp_path, MINIMAL + extra))


def test_missing_tables_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="missing source tables: regions"):
        load_manifest(write(tmp_path, MINIMAL.replace('[regions]\nurl = "/abs/regions.geojson"\n', "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_manifest(write(tmp_path, "[schools\nurl="))
    with pytest.raises(ConfigError, match="not found"):
        load_manifest(tmp_path / "nope.toml")


def test_duplicate_indicator_ids(tmp_path):
    entry = '[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\n'
    with pytest.raises(ConfigError, match="appears twice"):
        load_manifest(write(tmp_path, MINIMAL + entry + entry))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[indicator]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\n',
         "unknown table `indicator`; did you mean `indicators`?"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\nperiode = "annee"\n',
         "unknown key `periode`; did you mean `period`?"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\nkind = "ratio"\nnumerator = "n"\n',
         "`denominator` is required"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\ncolumn = "x"\ncombine = "median"\n',
         "combine"),
        ('[[indicators]]\nid = "x"\ntheme = "contexte"\nlabel = "X"\nsource = "a"\nkind = "presence"\n'
         'level = "communes"\nvia = "departements"\n', "`via` joins a school indicator"),
        ('[schools]\nurl = "s.csv"\nfeilds = { uai = "UAI" }\n', "did you mean `fields`?"),
    ],
)
def test_unknown_keys_and_tables_name_the_closest(tmp_path, extra, message):
    text = MINIMAL.replace('[schools]\nurl = "schools.csv"\n', "") if extra.startswith("[schools]") else MINIMAL
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("?", r"\?")):
        load_manifest(write(tmp_path, text + extra))


def test_presence_needs_no_column_and_the_catalogue_entry_carries_the_metadata(tmp_path):
    manifest = load_manifest(write(tmp_path, MINIMAL + """
[[indicators]]
id = "tedi"
theme = "equipement"
label = "Ted-i"
source = "tedi.csv"
kind = "presence"
applies_to = ["ecole", "college"]
producer = "Ministère"
source_url = "https://example.org/tedi/"
licence = "Licence Ouverte 2.0"
"""))
    entry = manifest.indicators[0].to_dict("2025-01-06")
    assert entry["kind"] == "boolean" and entry["source_kind"] == "presence" and entry["aggregate"] == "share"
    assert entry["applies_to"] == ["ecole", "college"] and entry["vintage"] == "2025-01-06"
    assert (entry["producer"], entry["source_url"], entry["licence"]) == (
        "Ministère", "https://example.org/tedi/", "Licence Ouverte 2.0")
