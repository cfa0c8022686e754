"""eCarto server: `core/` holds what ingest, styles and the web side share (no Flask); `web/` is HTTP.

Nothing is exported here, so importing any module below loads only what that module needs.
"""
