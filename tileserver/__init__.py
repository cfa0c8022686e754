"""eCarto server: vector and raster tiles, OGC API - Features and styles for digital education data."""

from tileserver.app import create_app

__all__ = ["create_app"]
