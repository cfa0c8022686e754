"""The ingest job: official open data in, one published, versioned dataset out.

Imports `tileserver.core` only (the data model, the store protocol, the stores): never Flask nor
`tileserver.web`, so a nightly ingest loads no web code.
"""
