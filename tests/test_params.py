"""The query-parameter parsers: each turns a request string into a typed value or a 400."""

from __future__ import annotations

import doctest

import pytest
from werkzeug.datastructures import MIMEAccept, MultiDict

from tileserver.core import crs
from tileserver.core.dataset import Field
from tileserver.core.errors import BadRequest, NotAcceptable, UnknownParameter
from tileserver.core.grid import BBox
from tileserver.core.settings import Settings
from tileserver.core.store import CollectionInfo
from tileserver.web import params

INFO = CollectionInfo("etablissements", "", "", "Point", "uai",
                      (Field("uai", "string"), Field("nom", "string"), Field("ips", "number"),
                       Field("effectif", "integer"), Field("education_prioritaire", "boolean")), 3,
                      BBox(-1, 47, 1, 49), 0, 14)


def test_doctests():
    assert doctest.testmod(params).failed == 0


def test_limit_bounds_come_from_the_settings():
    settings = Settings(default_limit=5, max_limit=50)
    assert params.limit(None, settings) == 5
    assert params.limit("50", settings) == 50
    for raw in ("51", "0", "-1", "1e3", "", " ", "9" * 20):
        with pytest.raises(BadRequest):
            params.limit(raw, settings)


def test_bbox_in_crs84_checks_ranges_and_order():
    assert params.bbox("-1,47,1,49", crs.CRS84).envelope == BBox(-1, 47, 1, 49)
    assert params.bbox(None, crs.CRS84) is None
    for raw in ("1,49,2,47", "-181,0,0,1", "0,0,181,1", "0,-91,1,0", "1,2,3,4,5", "x,1,2,3"):
        with pytest.raises(BadRequest):
            params.bbox(raw, crs.CRS84)


def test_projected_bbox_has_an_outline_inside_its_envelope():
    box = params.bbox("330000,6770000,360000,6800000", crs.parse("EPSG:2154"))
    west, south, east, north = box.envelope
    assert (west, south, east, north) == pytest.approx(box.outline.bounds)
    assert -2.2 < west < east < -1.0 and 47.8 < south < north < 48.5
    with pytest.raises(BadRequest):
        params.bbox("360000,6770000,330000,6800000", crs.parse("EPSG:2154"))


def test_sortby_and_properties_accept_only_known_names():
    assert params.sortby("nom,-ips", INFO) == (("nom", True), ("ips", False))
    assert params.properties(" nom , ips,nom", INFO) == ("nom", "ips")
    for raw in ("colour", "nom;", "--nom", "nom ips"):
        with pytest.raises(BadRequest):
            params.sortby(raw, INFO)
    with pytest.raises(BadRequest):
        params.properties("nom,password", INFO)


def test_equals_keeps_property_parameters_and_rejects_others():
    args = MultiDict([("limit", "3"), ("nom", "a"), ("nom", "b"), ("uai", "x")])
    assert params.equals(args, INFO, ("limit",)) == (("nom", ("a", "b")), ("uai", ("x",)))
    with pytest.raises(UnknownParameter):
        params.equals(MultiDict([("colour", "red")]), INFO, ("limit",))


def test_equals_types_each_value_as_its_property_holds_it():
    """The stores receive typed values only: request strings stop here."""
    args = MultiDict([("effectif", "420"), ("effectif", "95.0"), ("ips", "88"), ("education_prioritaire", "TRUE")])
    expected = (("effectif", (420, 95)), ("ips", (88.0,)), ("education_prioritaire", (True,)))
    assert params.equals(args, INFO, ()) == expected


@pytest.mark.parametrize(("name", "raw"), [("effectif", "1.5"), ("effectif", "many"), ("effectif", "1_0"),
                                           ("ips", "８８"), ("ips", "nan"), ("education_prioritaire", "maybe")])
def test_equals_refuses_a_value_its_property_cannot_hold(name, raw):
    with pytest.raises(BadRequest, match=name):
        params.equals(MultiDict([(name, raw)]), INFO, ())


def test_a_parameter_given_twice_is_a_400():
    with pytest.raises(BadRequest):
        params.one(MultiDict([("limit", "1"), ("limit", "2")]), "limit")


def test_output_format_negotiation():
    offered = {"json": "application/geo+json", "html": "text/html; charset=utf-8", "csv": "text/csv"}
    assert params.output_format(None, MIMEAccept([("*/*", 1)]), offered) == "json"
    assert params.output_format(None, MIMEAccept([("text/csv", 1), ("*/*", 0.1)]), offered) == "csv"
    assert params.output_format(None, MIMEAccept([("application/json", 1)]), offered) == "json"
    with pytest.raises(NotAcceptable):
        params.output_format(None, MIMEAccept([("image/png", 1)]), offered)
    with pytest.raises(BadRequest):
        params.output_format("xml", MIMEAccept(), offered)


def test_datetime_instants_and_intervals():
    assert params.datetime_(None) is None
    start, end = params.datetime_("2024-01-01T00:00:00Z/2024-06-30")
    assert start.year == 2024 and end.month == 6
    for raw in ("tomorrow", "2024-02-30", "../..", "2024-06-01/2024-01-01", "2024/2025/2026"):
        with pytest.raises(BadRequest):
            params.datetime_(raw)
