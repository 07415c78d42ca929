"""The CVAT round trip on top of the client: export jobs (resumable), pull-back diffs and commits. See docs/cvat.md."""
