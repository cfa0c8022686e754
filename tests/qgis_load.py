"""Run by test_qgis.py with the system Python that has QGIS: load a .qlr or .qgs, report its tile layers.

Exits 1 when the file does not load or a vector tile layer is invalid or has no symbology.
"""

import sys


def main(path: str) -> int:
    """Load the file in a headless QGIS (imported here: pytest imports this module without QGIS)."""
    from qgis.core import QgsApplication, QgsLayerDefinition, QgsProject, QgsVectorTileLayer

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    if path.endswith(".qlr"):
        loaded, error = QgsLayerDefinition.loadLayerDefinition(path, project, project.layerTreeRoot())
    else:
        loaded, error = project.read(path), ""
    tiles = [layer for layer in project.mapLayers().values() if isinstance(layer, QgsVectorTileLayer)]
    bad = [layer.name() for layer in tiles if not layer.isValid() or not layer.renderer().styles()]
    print(f"loaded={loaded} {error} tiles={len(tiles)} bad={bad}")
    ok = loaded and tiles and not bad
    if ok:
        print("vector tile layers: valid")
    app.exitQgis()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
