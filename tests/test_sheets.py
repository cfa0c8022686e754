"""Sheets: a school or a territory with its codes, counts and every indicator with its unit."""

from __future__ import annotations

import re

from tests.themed import themed_dataset

DATA = themed_dataset()
SCHOOLS = DATA.layers["etablissements"]


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


def test_a_school_sheet_has_its_codes_linked_and_every_indicator_with_its_unit(themed_app):
    school = first_school(type="college", statut="public", fibre=None)
    response = themed_app.test_client().get(f"/fiche/etablissements/{school['uai']}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    page = text(html)
    assert school["nom"] in page and "Collège public" in page and school["uai"] in page
    assert f'href="http://localhost/fiche/communes/{school["code_commune"]}"' in html
    assert f'href="http://localhost/fiche/regions/{school["code_region"]}"' in html
    speed = f"{school['debit_descendant_mbps']:.1f}".replace(".", ",").removesuffix(",0")
    assert f"Débit descendant {speed} Mbit/s" in page
    assert "Raccordé à la fibre non renseigné" in page
    assert f"Espace numérique de travail {'Oui' if school['ent'] else 'Non'}" in page
    for theme in ("Connectivité", "Équipement", "Services numériques", "Expérimentations"):
        assert f"<h3>{theme}</h3>" in html
    assert f"/map#fiche=etablissements/{school['uai']}&amp;map=15/" in html


def test_a_territory_sheet_has_school_counts_and_aggregates(themed_app):
    communes = DATA.layers["communes"]
    i = communes.columns["etablissements"].index(max(communes.columns["etablissements"]))
    code = communes.ids[i]
    page = text(themed_app.test_client().get(f"/fiche/communes/{code}").get_data(as_text=True))
    assert f"Établissements {communes.columns['etablissements'][i]} " in page
    assert f"Collèges {communes.columns['n_college'][i]} " in page
    share = f"{communes.columns['fibre'][i]:.1f}".replace(".", ",").removesuffix(",0")
    assert f"Raccordé à la fibre (part des établissements) {share} %" in page
    assert "Débit descendant (moyenne)" in page


def test_the_partial_sheet_is_a_fragment_for_the_map(themed_app):
    school = first_school()
    html = themed_app.test_client().get(f"/fiche/etablissements/{school['uai']}?partial=1").get_data(as_text=True)
    assert html.lstrip().startswith('<article class="fiche">') and "<html" not in html
    assert school["nom"] in html


def test_unknown_sheets_are_404(themed_app):
    client = themed_app.test_client()
    assert client.get("/fiche/etablissements/0000000A").status_code == 404
    assert client.get("/fiche/cantons/123").status_code == 404
