"""Run by test_qgis.py with the system Python that has QGIS: load a .qlr or .qgs, report its layers.

Exits 1 when the file does not load, a vector tile layer is invalid or has no symbology, or an
OGC API - Features layer is invalid or returns no feature of its own extent.
"""

import sys


def main(path: str) -> int:
    """Load the file in a headless QGIS (imported here: pytest imports this module without QGIS)."""
    from qgis.core import QgsApplication, QgsLayerDefinition, QgsProject, QgsVectorLayer, QgsVectorTileLayer

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
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
    ok = loaded and tiles and not bad
    if ok:
        print("vector tile layers: valid", flush=True)
    if features and all(counts.values()):
        print("features layers: valid", flush=True)
    app.exitQgis()
    return 0 if ok and features and all(counts.values()) else 1


def _features_in_extent(layer, most: int = 5) -> int:
    """How many features (up to `most`) QGIS reads through the layer for its own extent; 0 when invalid."""
    from qgis.core import QgsFeatureRequest

    if not layer.isValid():
        return 0
    request = QgsFeatureRequest().setFilterRect(layer.extent()).setLimit(most)
    return sum(1 for feature in layer.getFeatures(request) if feature.hasGeometry() and feature.attributes())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
