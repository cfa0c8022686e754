"""Sheets: a school or a territory with its codes, counts and every indicator with its unit."""

from __future__ import annotations

import re

import pytest

from tests.support.themed import themed_dataset
from tileserver.core.settings import Settings
from tileserver.web.app import create_app

DATA = themed_dataset()
SCHOOLS = DATA.layers["etablissements"]


@pytest.fixture(params=["geopackage", "postgis"])
def sheets_app(request):
    """An app over the themed data in each store: territories summarised at ingest, communes on request."""
    store = request.getfixturevalue("themed_store" if request.param == "geopackage" else "themed_postgis_store")
    return create_app(Settings(database=store.url), store=store)


def first_school(**wanted) -> dict:
    """The properties of the first synthetic school matching `wanted`."""
    for i in range(len(SCHOOLS)):
        props = {name: values[i] for name, values in SCHOOLS.columns.items()}
        if all(props[k] == v for k, v in wanted.items()):
            return props
    raise LookupError(wanted)


def text(html: str) -> str:
    """The page's text, one space between words."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_school_sheet_has_its_codes_linked_and_every_indicator_with_its_unit(sheets_app):
    school = first_school(type="college", statut="public", fibre=None)
    response = sheets_app.test_client().get(f"/fiche/etablissements/{school['uai']}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    page = text(html)
    assert school["nom"] in page and "Collège public" in page and school["uai"] in page
    assert f'href="http://localhost/fiche/communes/{school["code_commune"]}"' in html
    assert f'href="http://localhost/fiche/regions/{school["code_region"]}"' in html
    speed = f"{school['debit_descendant_mbps']:.1f}".replace(".", ",").removesuffix(",0")
    assert f"Débit descendant (Mbit/s) {speed} " in page  # the unit once, in the label
    assert "Raccordé à la fibre non communiqué" in page
    assert f"Espace numérique de travail {'Oui' if school['ent'] else 'Non'}" in page
    for theme in ("Connectivité", "Équipement", "Services numériques", "Expérimentations"):
        assert f"<h3>{theme}</h3>" in html
    assert f"/map#fiche=etablissements/{school['uai']}&amp;map=15/" in html


def test_a_school_sheet_sets_its_values_beside_its_communes_departements_and_frances(sheets_app):
    school = first_school(type="lycee")
    html = sheets_app.test_client().get(f"/fiche/etablissements/{school['uai']}").get_data(as_text=True)
    commune = DATA.layers["communes"]
    departement = DATA.layers["departements"]
    c = commune.ids.index(school["code_commune"])
    d = departement.ids.index(school["code_departement"])
    speed = next(e for e in DATA.catalogue if e["id"] == "debit_descendant_mbps")
    row = re.search(r"<tr><th scope=\"row\">Débit descendant \(Mbit/s\)</th>(.*?)</tr>", html).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells == [number(school["debit_descendant_mbps"]), number(commune.columns["debit_descendant_mbps"][c]),
                     number(departement.columns["debit_descendant_mbps"][d]), number(speed["france"]["value"])]
    headers = re.findall(r'<th scope="col">(.*?)</th>', html)[:5]
    names = [commune.columns["nom"][c], departement.columns["nom"][d]]
    assert headers == ["Indicateur", "Établissement", *names, "France"]


def number(value: float, unit: str = "") -> str:
    """A value as the sheets write it (one decimal, decimal comma)."""
    return f"{value:.1f}".replace(".", ",").removesuffix(",0") + unit


def test_a_territory_sheet_compares_with_its_parent_and_france_by_school_type(sheets_app):
    departement = DATA.layers["departements"]
    code = departement.ids[0]
    html = sheets_app.test_client().get(f"/fiche/departements/{code}").get_data(as_text=True)
    page = text(html)
    stored = DATA.summaries["departements"][code]
    region = DATA.summaries["regions"][stored["parents"]["regions"]]
    fibre = next(e for e in DATA.catalogue if e["id"] == "fibre")
    assert f"Établissements {departement.columns['etablissements'][0]} " in page
    block = html[html.index('id="ind-fibre"'):]
    block = block[:block.index("</section>")]
    headers = re.findall(r'<th scope="col">(.*?)</th>', block)
    assert headers[1:4] == [departement.columns["nom"][0], region["nom"], "France"]
    rows = dict(re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', block))
    own, parent = stored["indicators"]["fibre"], region["indicators"]["fibre"]
    assert re.findall(r"<td>(.*?)</td>", rows["Ensemble"]) == [number(own[0], " %"), number(parent[0], " %"),
                                                              number(fibre["france"]["value"], " %")]
    assert re.findall(r"<td>(.*?)</td>", rows["Collèges"])[0] == number(own[2], " %")
    # the spread over the schools' legend classes (Non, Oui), then the schools that gave no value
    assert '<title id="dist-fibre-t">' in block and "Non communiqué" in block
    hidden = dict(re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>', block))
    assert hidden["Non"].startswith(f"{own[5]} (") and hidden["Oui"].startswith(f"{own[6]} (")
    assert hidden["Non communiqué"].startswith(f"{own[4]} (")
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="cmp-fibre-t cmp-fibre-d"' in block


def test_a_departement_sheet_links_its_region_and_academie_by_name_and_lists_its_epci(sheets_app):
    code = DATA.layers["departements"].ids[0]
    html = sheets_app.test_client().get(f"/fiche/departements/{code}").get_data(as_text=True)
    stored = DATA.summaries["departements"][code]
    for level in ("regions", "academies"):
        parent = stored["parents"][level]
        name = DATA.summaries[level][parent]["nom"]
        assert f'<a href="http://localhost/fiche/{level}/{parent}">{name}</a>' in html
    epci = [c for c, s in DATA.summaries["epci"].items() if s["parents"].get("departements") == code]
    assert epci and all(f'href="http://localhost/fiche/epci/{c}"' in html for c in epci)


def test_a_commune_sheet_is_summarised_from_its_schools_on_request(sheets_app):
    communes = DATA.layers["communes"]
    i = communes.columns["etablissements"].index(max(communes.columns["etablissements"]))
    code = communes.ids[i]
    html = sheets_app.test_client().get(f"/fiche/communes/{code}").get_data(as_text=True)
    page = text(html)
    assert f"Établissements {communes.columns['etablissements'][i]} " in page
    assert f"Collèges {communes.columns['n_college'][i]} " in page
    block = html[html.index('id="ind-fibre"'):]
    rows = dict(re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', block[:block.index("</section>")]))
    assert re.findall(r"<td>(.*?)</td>", rows["Ensemble"])[0] == number(communes.columns["fibre"][i], " %")
    departement = DATA.summaries["departements"][communes.columns["code_departement"][i]]["nom"] \
        if "code_departement" in communes.columns else None
    assert departement is None or departement in page


def test_the_partial_sheet_is_a_fragment_for_the_map(sheets_app):
    school = first_school()
    html = sheets_app.test_client().get(f"/fiche/etablissements/{school['uai']}?partial=1").get_data(as_text=True)
    assert html.lstrip().startswith('<article class="fiche">') and "<html" not in html
    assert school["nom"] in html
    territory = sheets_app.test_client().get(f"/fiche/regions/{DATA.layers['regions'].ids[0]}?partial=1")
    assert territory.get_data(as_text=True).count("<svg") >= 2 * len(DATA.catalogue) - 4


def test_unknown_sheets_are_404(sheets_app):
    client = sheets_app.test_client()
    assert client.get("/fiche/etablissements/0000000A").status_code == 404
    assert client.get("/fiche/cantons/123").status_code == 404
