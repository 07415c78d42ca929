"""Archives shaped like other tools write them, byte by byte where Python's zipfile cannot.

`raw_zip` writes local headers, the central directory and its end record itself, so a test can give
names as any bytes (UTF-8 without the flag as Info-ZIP zip on Linux writes, CP949 as Korean Windows
archivers do), add Info-ZIP's Unicode Path extra field (0x7075), or lie about sizes.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

UTF8_FLAG = 0x800


@dataclass
class RawMember:
    name: bytes
    data: bytes = b""
    flags: int = 0
    extra: bytes = b""
    deflate: bool = True
    mode: int = 0o100644  # st_mode in the upper 16 bits of external_attr (create_system 3 = Unix)
    create_system: int = 3
    declared_size: int | None = None  # lie in both headers
    compressed: bytes | None = None  # reuse an already compressed stream (bombs)
    method: int | None = None  # override the compression method field (e.g. 9, Deflate64)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def unicode_path_extra(raw_name: bytes, unicode_name: str) -> bytes:
    """Info-ZIP's 0x7075 field: version 1, CRC-32 of the header's name bytes, the name in UTF-8."""
    payload = struct.pack("<BI", 1, zlib.crc32(raw_name)) + unicode_name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(payload)) + payload


def raw_zip(path: Path, members: list[RawMember]) -> Path:
    out = BytesIO()
    central = []
    for m in members:
        body = m.compressed if m.compressed is not None else (deflate(m.data) if m.deflate else m.data)
        method = m.method if m.method is not None else (8 if m.deflate else 0)
        size = m.declared_size if m.declared_size is not None else len(m.data)
        crc = zlib.crc32(m.data)
        offset = out.tell()
        out.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, m.flags, method, 0, 0x21, crc, len(body), size,
                              len(m.name), len(m.extra)))
        out.write(m.name + m.extra + body)
        central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 30, m.create_system, 20, 0, m.flags, method, 0,
                                   0x21, crc, len(body), size, len(m.name), len(m.extra), 0, 0, 0, m.mode << 16,
                                   offset) + m.name + m.extra)
    start = out.tell()
    for c in central:
        out.write(c)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())
    return path


def export_members(doc_json: bytes, images: dict[bytes, bytes], prefix: bytes = b"", **kw: object) -> list[RawMember]:
    """A CVAT layout: annotations/instances_default.json + images/<name> with the given name bytes."""
    members = [RawMember(prefix + b"annotations/instances_default.json", doc_json, **kw)]
    members += [RawMember(prefix + b"images/" + name, data, **kw) for name, data in images.items()]
    return members


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w", fmt: int = tarfile.PAX_FORMAT,
             encoding: str = "utf-8", extra: list[tarfile.TarInfo] | None = None) -> Path:
    """A tar (mode "w:gz" for .tar.gz/.tgz) of `files`, names written in `encoding` (GNU/ustar) or pax."""
    with tarfile.open(path, mode, format=fmt, encoding=encoding) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, BytesIO(data))
        for info in extra or []:
            tf.addfile(info)
    return path
