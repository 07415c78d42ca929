"""HTTP body plumbing for the fake CVAT: Content-Length / chunked readers and a streaming multipart parser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

_READ = 1 << 20


def body_chunks(rfile: BinaryIO, headers) -> Iterator[bytes]:
    """The request body in pieces, for Content-Length and for chunked transfer encoding."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        while True:
            line = rfile.readline(1 << 16)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                    pass
                return
            left = size
            while left:
                block = rfile.read(min(left, _READ))
                if not block:
                    raise ConnectionError("client closed mid-chunk")
                left -= len(block)
                yield block
            rfile.readline(16)
        return
    left = int(headers.get("Content-Length") or 0)
    while left > 0:
        block = rfile.read(min(left, _READ))
        if not block:
            raise ConnectionError("client closed mid-body")
        left -= len(block)
        yield block


_PARAM_RE = re.compile(r';\s*([a-zA-Z0-9_*-]+)="((?:[^"\\]|\\.)*)"|;\s*([a-zA-Z0-9_*-]+)=([^;\s]+)')


def _unquote(text: str) -> str:
    return text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n").replace("\\\\", "\\")


def _disposition(head: bytes) -> tuple[str, str | None]:
    name, filename = "", None
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            for m in _PARAM_RE.finditer(line):
                key = (m.group(1) or m.group(3)).lower()
                val = _unquote(m.group(2)) if m.group(1) else m.group(4)
                if key == "name":
                    name = val
                elif key == "filename":
                    filename = val
    return name, filename


class MultipartError(ValueError):
    pass


def parse_multipart(
    chunks: Iterator[bytes], content_type: str, open_file: Callable[[str, str], BinaryIO]
) -> dict[str, list[str]]:
    """Stream a multipart body: file parts go to `open_file(field, filename)`, the rest is returned.

    Returns form fields as {name: [values]}. File content never sits in memory as a whole.
    """
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        raise MultipartError("multipart body without boundary")
    delim = b"\r\n--" + m.group(1).encode()
    fields: dict[str, list[str]] = {}
    buf = bytearray(b"\r\n")  # so the first boundary looks like every other delimiter
    start = 0  # parse position in buf (consumed bytes are dropped only when refilling)
    it = iter(chunks)

    def fill() -> bool:
        nonlocal start
        block = next(it, None)
        if block is None:
            return False
        del buf[:start]
        start = 0
        buf.extend(block)
        return True

    while (pos := buf.find(delim, start)) < 0:  # preamble up to the first delimiter
        if not fill():
            raise MultipartError("no multipart boundary found")
    start = pos + len(delim)
    keep = len(delim) - 1
    while True:
        while len(buf) - start < 2 and fill():
            pass
        if buf[start : start + 2] == b"--":
            break  # closing delimiter
        while (end := buf.find(b"\r\n\r\n", start)) < 0:
            if not fill():
                raise MultipartError("truncated part headers")
        name, filename = _disposition(bytes(buf[start + 2 : end]))
        start = end + 4
        sink = open_file(name, filename) if filename is not None else None
        value = bytearray()
        emit = sink.write if sink is not None else value.extend
        while True:
            pos = buf.find(delim, start)
            if pos >= 0:
                emit(buf[start:pos])
                start = pos + len(delim)
                break
            if len(buf) - start > keep:
                emit(buf[start : len(buf) - keep])
                start = len(buf) - keep
            if not fill():
                raise MultipartError("truncated multipart body")
        if sink is not None:
            sink.close()
        else:
            fields.setdefault(name, []).append(value.decode("utf-8", "replace"))
    for _ in it:  # drain an epilogue
        pass
    return fields
