"""The search engine for the gallery: one in-process DuckDB per dataset version, with the version's
lake tables, precomputed per-image class counts and attribute columns, and a mirror of the
curation rows kept current by the version's curation sequence number."""
