"""MapLibre styles, legends and QGIS layer definitions, generated from the indicator catalogue."""
