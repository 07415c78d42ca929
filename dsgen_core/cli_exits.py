"""How the CLI ends when the world around it fails: a reader gone from the pipe, a catalog locked or down."""

from __future__ import annotations

import os
import sys

EXIT_PIPE = 128 + 13  # what a shell reports for a command ended by SIGPIPE, as `yes | head -1` does


def silence_stdio() -> None:
    """Point stdout and stderr at /dev/null, so the interpreter's final flush into the closed pipe is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


def catalog_error_line(exc: BaseException) -> str:
    """One line for an operational catalog error: the driver's first line, never the statement or its values."""
    from dsgen_core.catalog.db import sqlite_busy_timeout

    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if "database is locked" in first or "database table is locked" in first:
        return (f"the catalog is locked: another process has held its write lock for more than "
                f"{sqlite_busy_timeout():g} s (DSGEN_SQLITE_BUSY_TIMEOUT); the command stopped there, "
                "try again when that process is done")
    return f"the catalog could not be reached or used: {first}"
