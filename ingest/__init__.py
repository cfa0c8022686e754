"""The ingest job: official open data in, one published, versioned dataset out."""
