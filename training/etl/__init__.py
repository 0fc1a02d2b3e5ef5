"""``genfx-train ingest``: licensed source folders -> webdataset shards + a dataset manifest, on Ray Data."""
