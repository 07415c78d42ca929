"""TUS 1.0 uploads as CVAT implements them (create with Upload-Length, then PATCH chunks at the Location)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from dsgen_core.cvat.errors import CvatHttpError
from dsgen_core.cvat.models import UploadFile
from dsgen_core.cvat.transport import Transport

__all__ = ["tus_upload"]

TUS = {"Tus-Resumable": "1.0.0"}


def _read(f: UploadFile, offset: int, n: int) -> bytes:
    if f.data is not None:
        return f.data[offset : offset + n]
    with open(f.path, "rb") as fh:  # type: ignore[arg-type]
        fh.seek(offset)
        return fh.read(n)


def _fail(what: str, status: int, transport: Transport, text: str) -> CvatHttpError:
    return CvatHttpError(transport.redact(f"CVAT refused the TUS {what}: HTTP {status} {text[:200]}"), status)


def tus_upload(
    transport: Transport,
    endpoint: str,
    f: UploadFile,
    chunk_bytes: int,
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Upload one file by TUS to `endpoint`, which must end with '/' (CVAT appends the file id to it)."""
    if not endpoint.endswith("/"):
        raise ValueError("TUS endpoints of CVAT need the trailing slash")
    size = f.size
    meta = "filename " + base64.b64encode(f.name.encode()).decode()
    origin = {"Origin": transport.origin}
    resp = transport.request(
        "POST",
        endpoint,
        headers={**TUS, **origin, "Upload-Length": str(size), "Upload-Metadata": meta},
    )
    if resp.status_code != 201 or "Location" not in resp.headers:
        raise _fail("creation", resp.status_code, transport, resp.text)
    location = transport.resolve(resp.headers["Location"])
    offset = 0
    while offset < size:
        chunk = _read(f, offset, chunk_bytes)
        resp = transport.request(
            "PATCH",
            location,
            body=chunk,
            headers={
                **TUS,
                **origin,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        if resp.status_code == 409:  # a retried PATCH the server had already applied: resync
            head = transport.request("HEAD", location, headers={**TUS, **origin})
            if head.status_code != 200:
                raise _fail("offset query", head.status_code, transport, head.text)
            offset = int(head.headers["Upload-Offset"])
            continue
        if resp.status_code != 204:
            raise _fail("chunk", resp.status_code, transport, resp.text)
        offset = int(resp.headers.get("Upload-Offset", offset + len(chunk)))
        if on_chunk is not None:
            on_chunk(len(chunk))
