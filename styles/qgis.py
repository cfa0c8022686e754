"""QGIS layer definitions (.qlr) and a project (.qgs): our vector tiles and OGC API Features layers.

QGIS reads a layer's symbology from the file and only applies a `styleUrl=` when a person adds the
layer through the Data Source Manager, so each vector tile layer carries both: the `styleUrl` to our
MapLibre style, and a renderer written here from the same `Classes` the style uses (the MapLibre
converter of QGIS 3.22 skips `case` expressions, so it could not colour the choropleths anyway).

Zoom ranges are exact: the tile layer's `zmin`/`zmax` are those the server tiles at (QGIS overzooms
past `zmax` and requests nothing deeper), and each Features layer is only drawn from the zoom its
tiles start at, so QGIS never pages through every school of France at a national scale.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote

from pyproj import CRS
from pyproj.enums import WktVersion

from styles import palettes
from styles.catalogue import (
    LEVEL_TITLES,
    StyleSource,
    pick_indicator,
    source_parts,
    style_ids,
    theme_indicators,
    title,
)
from styles.classes import for_aggregates, for_schools
from styles.maplibre import MAXZOOM, OUTLINE_WIDTHS, TYPE_COLOURS, auto_bands
from tileserver.core.dataset import SCHOOLS

ZOOM0_SCALE = 559_082_264.028_717_8  # the scale QGIS gives zoom 0 of the web mercator tile grid
FRANCE_3857 = (-580_000.0, 5_060_000.0, 1_070_000.0, 6_640_000.0)  # metropolitan France, EPSG:3857 metres
QGIS_VERSION = "3.22.0"
# What QGIS 3.22 writes after the WKT for the two CRSs we use (`srsid` is its own srs.db id).
CRS_DEFINITIONS = {
    "EPSG:3857": {
        "proj4": "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
                 "+nadgrids=@null +wktext +no_defs",
        "srsid": "3857", "srid": "3857", "authid": "EPSG:3857", "description": "WGS 84 / Pseudo-Mercator",
        "projectionacronym": "merc", "ellipsoidacronym": "EPSG:7030", "geographicflag": "false",
    },
    "EPSG:4326": {
        "proj4": "+proj=longlat +datum=WGS84 +no_defs",
        "srsid": "3452", "srid": "4326", "authid": "EPSG:4326", "description": "WGS 84",
        "projectionacronym": "longlat", "ellipsoidacronym": "EPSG:7030", "geographicflag": "true",
    },
}
LABEL_SIZES = {"regions": "10", "academies": "9", "departements": "9", "epci": "8", "communes": "8"}


def scale(zoom: int) -> float:
    """The map scale at which QGIS uses tiles of `zoom`.

    >>> round(scale(0)), round(scale(12))
    (559082264, 136495)
    """
    return ZOOM0_SCALE / (1 << zoom)


def layer_definition(source: StyleSource, style_id: str) -> bytes:
    """A .qlr adding one style's vector tiles and, unticked, every collection as an OGC API Features layer."""
    root = ET.Element("qlr")
    tree = _group(root, "", checked=True)
    theme = _group(tree, f"eCarto — {title(style_id)}", checked=True)
    _tree_layer(theme, _tile_layer_id(style_id), title(style_id), _tile_uri(source, style_id), "vectortile")
    data = _group(theme, "Données (OGC API - Features)", checked=False)
    for name in source.zooms:
        _tree_layer(data, _features_id(name), _features_title(name), _features_uri(source, name), "OAPIF", False)
    layers = ET.SubElement(root, "maplayers")
    layers.append(tile_layer(source, style_id))
    for name in source.zooms:
        layers.append(features_layer(source, name))
    return _document(root, "qgis-layer-definition")


def project(source: StyleSource) -> bytes:
    """A .qgs holding every style (the first shown) and the Features layers, framed on France."""
    root = ET.Element("qgis", projectname="eCarto", version=QGIS_VERSION)
    ET.SubElement(root, "title").text = "eCarto — le numérique dans les écoles"
    _srs(ET.SubElement(root, "projectCrs"), "EPSG:3857")
    _project_properties(root)
    tree = ET.SubElement(root, "layer-tree-group")
    ids = style_ids(source.catalogue)
    for i, sid in enumerate(ids):
        group = _group(tree, f"eCarto — {title(sid)}", checked=i == 1 or len(ids) == 1)
        _tree_layer(group, _tile_layer_id(sid), title(sid), _tile_uri(source, sid), "vectortile")
    data = _group(tree, "Données (OGC API - Features)", checked=False)
    for name in source.zooms:
        _tree_layer(data, _features_id(name), _features_title(name), _features_uri(source, name), "OAPIF", False)
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas")
    ET.SubElement(canvas, "units").text = "meters"
    _extent(canvas, FRANCE_3857)
    _srs(ET.SubElement(canvas, "destinationsrs"), "EPSG:3857")
    layers = ET.SubElement(root, "projectlayers")
    for sid in ids:
        layers.append(tile_layer(source, sid))
    for name in source.zooms:
        layers.append(features_layer(source, name))
    return _document(root, "qgis")


def _project_properties(root: ET.Element) -> None:
    """Project properties: QGIS reads `projectCrs` only when "projections enabled" says so."""
    properties = ET.SubElement(root, "properties")
    srs = ET.SubElement(properties, "SpatialRefSys")
    ET.SubElement(srs, "ProjectionsEnabled", type="int").text = "1"


def tile_layer(source: StyleSource, style_id: str) -> ET.Element:
    """The vector tile layer of one style: every collection in one tile URL, styled from the catalogue."""
    layer = _map_layer("vector-tile", _tile_layer_id(style_id), title(style_id), _tile_uri(source, style_id),
                       "EPSG:3857", None)
    ET.SubElement(layer, "provider").text = "xyzvectortiles"
    layer.append(_resource_metadata(source, style_id))
    layer.extend(symbology(source, style_id))
    ET.SubElement(layer, "blendMode").text = "0"
    ET.SubElement(layer, "layerOpacity").text = "1"
    return layer


def style_file(source: StyleSource, style_id: str) -> bytes:
    """A QGIS style (.qml) for a vector tile layer added by hand: *Symbology › Style › Load Style…*."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology|Labeling")
    root.extend(symbology(source, style_id))
    return _document(root, "qgis")


def symbology(source: StyleSource, style_id: str) -> list[ET.Element]:
    """The renderer (choropleths per level, clusters, schools) and the labels of one style's tile layer."""
    renderer = ET.Element("renderer", type="basic")
    styles = ET.SubElement(renderer, "styles")
    entry = pick_indicator(source.catalogue, style_id, None)
    bands = _territory_bands(source)
    for name, level_zooms in bands.items():
        fill = for_aggregates(entry, name).qgis(f'"{entry["id"]}"') if entry else None
        styles.append(_fill_style(name, level_zooms, fill))
        styles.append(_outline_style(name, (level_zooms[0], -1)))
    if SCHOOLS in source.zooms:
        styles.extend(_school_styles(source, entry))
    labeling = ET.Element("labeling", type="basic")
    labels = ET.SubElement(labeling, "styles")
    for name, level_zooms in bands.items():
        labels.append(_label_style(name, 2, level_zooms, LABEL_SIZES.get(name, "8"), "nom"))
    if SCHOOLS in source.zooms:
        labels.append(_label_style(SCHOOLS, 0, (max(14, source.zooms[SCHOOLS][0]), -1), "7", "nom",
                                   '"point_count" IS NULL'))
    return [renderer, labeling]


def _label_style(name: str, geometry: int, zooms: tuple[int, int], size: str, field: str,
                 expression: str = "") -> ET.Element:
    """One label rule: a field's text in dark grey with a white halo, over the polygon's centre or beside the point."""
    style = ET.Element("style", name=f"{name}-label", layer=name, geometry=str(geometry), enabled="1",
                       expression=expression, **{"min-zoom": str(zooms[0]), "max-zoom": str(zooms[1])})
    settings = ET.SubElement(style, "settings", calloutType="simple")
    text = ET.SubElement(settings, "text-style", fieldName=field, isExpression="0", fontFamily="Noto Sans",
                         namedStyle="Bold" if name == "regions" else "Regular", fontSize=size, fontSizeUnit="Point",
                         textColor="43,43,43,255", textOpacity="1", fontWeight="75" if name == "regions" else "50")
    ET.SubElement(text, "text-buffer", bufferDraw="1", bufferSize="0.8", bufferSizeUnits="MM",
                  bufferColor="255,255,255,255", bufferOpacity="0.9", bufferNoFill="1", bufferJoinStyle="128")
    ET.SubElement(settings, "text-format", wrapChar="", autoWrapLength="16", multilineAlign="3")
    placement = "1" if geometry == 2 else "6"  # over the centre of a polygon; around a point
    ET.SubElement(settings, "placement", placement=placement, centroidInside="1", centroidWhole="0", dist="1",
                  distUnits="MM", priority="5" if geometry == 2 else "3")
    ET.SubElement(settings, "rendering", drawLabels="1", obstacle="1", labelPerPart="0", mergeLines="0",
                  scaleVisibility="0", upsidedownLabels="0", displayAll="0")
    return style


def _resource_metadata(source: StyleSource, style_id: str) -> ET.Element:
    """The layer's metadata: what each indicator of the theme means, and where it comes from."""
    entries = theme_indicators(source.catalogue, style_id) if style_id != SCHOOLS else []
    element = ET.Element("resourceMetadata")
    ET.SubElement(element, "identifier").text = _tile_layer_id(style_id)
    ET.SubElement(element, "parentidentifier")
    ET.SubElement(element, "language").text = "fre"
    ET.SubElement(element, "type").text = "dataset"
    ET.SubElement(element, "title").text = f"eCarto — {title(style_id)}"
    ET.SubElement(element, "abstract").text = "\n\n".join(
        ["Établissements scolaires et territoires (régions, académies, départements, EPCI, communes) "
         "servis en tuiles vectorielles par eCarto."] + [_indicator_abstract(e) for e in entries])
    links = ET.SubElement(element, "links")
    for entry in entries:
        if entry.get("source_url"):
            ET.SubElement(links, "link", name=entry["label"], type="WWW:LINK", url=entry["source_url"],
                          description=entry.get("description", ""), format="", mimeType="", size="")
    licenses = ET.SubElement(element, "licenses")
    for licence in sorted({e["licence"] for e in entries if e.get("licence")}):
        ET.SubElement(licenses, "license").text = licence
    return element


def _indicator_abstract(entry: Mapping) -> str:
    """One indicator in words: label and unit, definition, source.

    >>> _indicator_abstract({"label": "Débit", "unit": "Mbit/s", "description": "Mesuré.", "producer": "DNE"})
    'Débit (Mbit/s) : Mesuré. Source : DNE.'
    """
    text = entry["label"] + (f" ({entry['unit']})" if entry.get("unit") else "")
    if entry.get("description"):
        text += f" : {entry['description'].rstrip('.')}."
    parts = source_parts(entry) + ([entry["source_url"]] if entry.get("source_url") else [])
    return text + (f" Source : {', '.join(parts)}." if parts else "")


def features_layer(source: StyleSource, name: str) -> ET.Element:
    """One collection as an OGC API - Features layer, drawn from the zoom its tiles start at."""
    start = source.cluster_maxzoom if name == SCHOOLS else source.zooms[name][0]
    geometry = "Point" if name == SCHOOLS else "MultiPolygon"
    layer = _map_layer("vector", _features_id(name), _features_title(name), _features_uri(source, name),
                       "EPSG:4326", start, geometry=geometry)
    ET.SubElement(layer, "provider", encoding="UTF-8").text = "OAPIF"
    return layer


def _tile_uri(source: StyleSource, style_id: str) -> str:
    """The vector tile data source: our style, one tile URL for every collection, exact zooms."""
    names = ",".join(source.zooms)
    params = {
        "styleUrl": f"{source.base_url}/styles/{style_id}",
        "type": "xyz",
        "url": f"{source.base_url}/tiles/{names}/{{z}}/{{x}}/{{y}}.mvt",
        "zmax": str(source.tile_maxzoom),
        "zmin": str(source.tile_minzoom),
    }
    return "&".join(f"{key}={quote(value, safe=':/,')}" for key, value in params.items())


def _features_uri(source: StyleSource, name: str) -> str:
    return (f"pagingEnabled='true' preferCoordinatesForWfsT11='false' restrictToRequestBBOX='1' "
            f"typename='{name}' url='{source.base_url}'")


def _territory_bands(source: StyleSource) -> dict[str, tuple[int, int]]:
    """The automatic territory bands as QGIS min/max zooms: both inclusive, -1 for no limit."""
    return {name: (start or -1, end - 1 if end < MAXZOOM else -1) for name, (start, end) in auto_bands(source).items()}


def _fill_style(name: str, zooms: tuple[int, int], colour: str | None) -> ET.Element:
    props = {"color": _rgba(palettes.NEUTRAL_FILL, 90), "style": "solid", "outline_style": "no"}
    defined = {"fillColor": colour} if colour else {}
    alpha = "0.78" if colour else "1"
    return _style(f"{name}-fill", name, 2, zooms, "", _symbol("fill", "SimpleFill", props, defined, alpha))


def _outline_style(name: str, zooms: tuple[int, int]) -> ET.Element:
    props = {"line_color": _rgba(palettes.OUTLINE, 180), "line_width": str(OUTLINE_WIDTHS[name]),
             "line_width_unit": "Pixel", "line_style": "solid"}
    return _style(f"{name}-outline", name, 1, zooms, "", _symbol("line", "SimpleLine", props, {}))


def _school_styles(source: StyleSource, entry: Mapping | None) -> list[ET.Element]:
    """Clusters sized by their count and coloured by the mean, then single schools."""
    marker = {"name": "circle", "outline_color": _rgba(palettes.EDGE), "outline_width": "1",
              "outline_width_unit": "Pixel", "size_unit": "Pixel", "color": _rgba(palettes.NEUTRAL)}
    cluster_colour = _cluster_colour(entry)
    size = 'scale_linear(sqrt(coalesce("point_count", 1)), 1, 100, 10, 68)'
    clusters = _symbol("marker", "SimpleMarker", {**marker, "size": "10"},
                       {"size": size, **({"fillColor": cluster_colour} if cluster_colour else {})})
    point_colour = for_schools(entry).qgis(f'"{entry["id"]}"') if entry else _type_colour()
    points = _symbol("marker", "SimpleMarker", {**marker, "size": "7"}, {"fillColor": point_colour})
    last_cluster = source.cluster_maxzoom - 1
    return [
        _style("etablissements-clusters", SCHOOLS, 0, (-1, last_cluster), '"point_count" IS NOT NULL', clusters),
        _style("etablissements-points", SCHOOLS, 0, (source.cluster_maxzoom, -1), '"point_count" IS NULL', points),
    ]


def _cluster_colour(entry: Mapping | None) -> str | None:
    if entry is None or entry["kind"] == "category":
        return None
    n, total = f'"{entry["id"]}_n"', f'"{entry["id"]}_sum"'
    mean = f"(CASE WHEN {n} > 0 THEN {total} / {n} END)"
    if entry["kind"] == "boolean":
        mean = f"(100 * {mean})"
    return for_aggregates(entry).qgis(mean)


def _type_colour() -> str:
    cases = " ".join(f"WHEN '{t}' THEN '{c}'" for t, c in TYPE_COLOURS.items() if t != "autre")
    return f"CASE \"type\" {cases} ELSE '{TYPE_COLOURS['autre']}' END"


def _style(name: str, layer: str, geometry: int, zooms: tuple[int, int], expression: str,
           symbol: ET.Element) -> ET.Element:
    """One rule of QGIS's basic vector tile renderer (geometry: 0 point, 1 line, 2 polygon)."""
    style = ET.Element("style", name=name, layer=layer, geometry=str(geometry), enabled="1",
                       expression=expression, **{"min-zoom": str(zooms[0]), "max-zoom": str(zooms[1])})
    ET.SubElement(style, "symbols").append(symbol)
    return style


def _symbol(kind: str, layer_class: str, props: Mapping[str, str], defined: Mapping[str, str],
            alpha: str = "1") -> ET.Element:
    """A one-layer symbol; `defined` maps QGIS property keys (fillColor, size) to expressions."""
    symbol = ET.Element("symbol", type=kind, name="0", alpha=alpha, clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(symbol, "layer", {"class": layer_class, "enabled": "1", "locked": "0", "pass": "0"})
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in props.items():
        ET.SubElement(options, "Option", type="QString", name=key, value=value)
        ET.SubElement(layer, "prop", k=key, v=value)
    layer.append(_data_defined(defined))
    return symbol


def _data_defined(expressions: Mapping[str, str]) -> ET.Element:
    """QGIS data-defined properties, each an expression (type 3)."""
    element = ET.Element("data_defined_properties")
    collection = ET.SubElement(element, "Option", type="Map")
    ET.SubElement(collection, "Option", type="QString", name="name", value="")
    properties = ET.SubElement(collection, "Option", type="Map", name="properties")
    for key, expression in expressions.items():
        prop = ET.SubElement(properties, "Option", type="Map", name=key)
        ET.SubElement(prop, "Option", type="bool", name="active", value="true")
        ET.SubElement(prop, "Option", type="QString", name="expression", value=expression)
        ET.SubElement(prop, "Option", type="int", name="type", value="3")
    ET.SubElement(collection, "Option", type="QString", name="type", value="collection")
    return element


def _map_layer(kind: str, layer_id: str, name: str, uri: str, crs: str, minzoom: int | None,
               **attributes: str) -> ET.Element:
    """A `<maplayer>`, visible from `minzoom` on when it is given."""
    visibility = {"hasScaleBasedVisibilityFlag": "0", "minScale": "0", "maxScale": "0"}
    if minzoom:
        visibility = {"hasScaleBasedVisibilityFlag": "1", "minScale": f"{scale(minzoom):.0f}", "maxScale": "0"}
    layer = ET.Element("maplayer", type=kind, **visibility, **attributes)
    ET.SubElement(layer, "id").text = layer_id
    ET.SubElement(layer, "datasource").text = uri
    ET.SubElement(layer, "layername").text = name
    _srs(ET.SubElement(layer, "srs"), crs)
    return layer


def _group(parent: ET.Element, name: str, *, checked: bool) -> ET.Element:
    return ET.SubElement(parent, "layer-tree-group", name=name, expanded="1", checked=_checked(checked))


def _tree_layer(parent: ET.Element, layer_id: str, name: str, uri: str, provider: str, checked: bool = True) -> None:
    ET.SubElement(parent, "layer-tree-layer", id=layer_id, name=name, source=uri, providerKey=provider,
                  checked=_checked(checked), expanded="0")


def _checked(flag: bool) -> str:
    return "Qt::Checked" if flag else "Qt::Unchecked"


def _srs(parent: ET.Element, authid: str) -> None:
    """A full `spatialrefsys`, as QGIS writes it: given only an authid, QGIS 3.22 leaves a project CRS invalid."""
    system = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(system, "wkt").text = _wkt(authid)
    for key, value in CRS_DEFINITIONS[authid].items():
        ET.SubElement(system, key).text = value


@lru_cache(maxsize=4)
def _wkt(authid: str) -> str:
    """The CRS's WKT2 from PROJ's database (the same text QGIS writes)."""
    return CRS.from_user_input(authid).to_wkt(WktVersion.WKT2_2019)


def _extent(parent: ET.Element, box: tuple[float, float, float, float]) -> None:
    extent = ET.SubElement(parent, "extent")
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
        ET.SubElement(extent, key).text = f"{value:.0f}"


def _tile_layer_id(style_id: str) -> str:
    return f"ecarto_tiles_{style_id}"


def _features_id(name: str) -> str:
    return f"ecarto_features_{name}"


def _features_title(name: str) -> str:
    return LEVEL_TITLES.get(name, "Établissements")


def _rgba(colour: str, alpha: int = 255) -> str:
    """A `#rrggbb` colour as QGIS writes it.

    >>> _rgba("#08306b")
    '8,48,107,255'
    """
    return ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5)) + f",{alpha}"


def _document(root: ET.Element, doctype: str) -> bytes:
    ET.indent(root)
    return f"<!DOCTYPE {doctype}>\n".encode() + ET.tostring(root, encoding="utf-8") + b"\n"

