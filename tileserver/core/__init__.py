"""The core: data model, tile grid, settings, errors, stores and encoders.

Ingest, styles and the web side import from here; nothing here imports Flask, `tileserver.web`,
`ingest` or `styles`.
"""
