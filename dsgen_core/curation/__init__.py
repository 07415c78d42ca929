"""Curation rows (tags, typed metadata) in the catalog: edits, bulk edits with undo, CSV in and out."""
