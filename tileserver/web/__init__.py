"""The HTTP side: the app factory, the blueprints (one per API resource) and their plumbing.

May import `tileserver.core` and `styles`; nothing outside this package (ingest, styles, the core)
imports it. The app is built by `tileserver.web.app:create_app()`.
"""
