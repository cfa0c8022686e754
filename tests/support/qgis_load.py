"""Run by test_qgis.py with the system Python that has QGIS: load a .qlr or .qgs, report its layers.

Exits 1 when the file does not load, a vector tile layer is invalid or has no symbology or no
labels, a project's CRS is invalid, or an OGC API - Features layer is invalid or returns no feature
of its own extent. With a .qml and a tile URL: a tile layer added as by hand, styled with the .qml.
"""

import sys


def main(path: str, url: str = "") -> int:
    """Load the file in a headless QGIS (imported here: pytest imports this module without QGIS)."""
    from qgis.core import QgsApplication, QgsLayerDefinition, QgsProject, QgsVectorLayer, QgsVectorTileLayer

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    if path.endswith(".qml"):
        return _by_hand(app, path, url)
    if path.endswith(".qlr"):
        loaded, error = QgsLayerDefinition.loadLayerDefinition(path, project, project.layerTreeRoot())
    else:
        loaded, error = project.read(path), ""
    layers = project.mapLayers().values()
    tiles = [layer for layer in layers if isinstance(layer, QgsVectorTileLayer)]
    bad = [layer.name() for layer in tiles if not layer.isValid() or not layer.renderer().styles()]
    print(f"loaded={loaded} {error} tiles={len(tiles)} bad={bad}", flush=True)
    features = [layer for layer in layers if isinstance(layer, QgsVectorLayer) and layer.providerType() == "OAPIF"]
    counts = {layer.name(): _features_in_extent(layer) for layer in features}
    print(f"features layers={counts}", flush=True)
    unlabelled = [layer.name() for layer in tiles if layer.labeling() is None or not layer.labeling().styles()]
    crs = project.crs()
    if path.endswith(".qgs"):
        print(f"project crs: {crs.authid()} {'valid' if crs.isValid() else 'invalid'}", flush=True)
    ok = loaded and tiles and not bad and not unlabelled and (crs.isValid() or not path.endswith(".qgs"))
    if ok:
        print("vector tile layers: valid", flush=True)
        print("labels: enabled", flush=True)
    if features and all(counts.values()):
        print("features layers: valid", flush=True)
    app.exitQgis()
    return 0 if ok and features and all(counts.values()) else 1


def _by_hand(app, qml: str, url: str) -> int:
    """A generic vector tile connection to `url`, styled with *Load Style…* from `qml`."""
    from qgis.core import QgsVectorTileLayer

    layer = QgsVectorTileLayer(f"type=xyz&url={url}&zmin=0&zmax=14", "eCarto")
    message, loaded = layer.loadNamedStyle(qml)
    styles = layer.renderer().styles() if layer.renderer() else []
    labels = layer.labeling().styles() if layer.labeling() else []
    print(f"by hand: valid={layer.isValid()} loaded={loaded} {message} styles={len(styles)} labels={len(labels)}")
    ok = layer.isValid() and loaded and len(styles) > 2 and labels
    if ok:
        print("vector tile layers: valid\nlabels: enabled", flush=True)
    app.exitQgis()
    return 0 if ok else 1


def _features_in_extent(layer, most: int = 5) -> int:
    """How many features (up to `most`) QGIS reads through the layer for its own extent; 0 when invalid."""
    from qgis.core import QgsFeatureRequest

    if not layer.isValid():
        return 0
    request = QgsFeatureRequest().setFilterRect(layer.extent()).setLimit(most)
    return sum(1 for feature in layer.getFeatures(request) if feature.hasGeometry() and feature.attributes())


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
