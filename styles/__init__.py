"""MapLibre styles, legends and QGIS layer definitions, generated from the indicator catalogue.

Pure documents from the catalogue: imports `tileserver.core` only; the web layer serves them.
"""
