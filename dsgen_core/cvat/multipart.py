"""A streaming multipart/form-data body of exactly known size, so uploads can be bounded per request."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dsgen_core.cvat.models import UploadFile

__all__ = ["MultipartBody", "fields_size", "part_overhead", "quoted_len"]

_READ = 1 << 20
_FLUSH = 1 << 20


def _quote(text: str) -> str:
    """Quote a header parameter the way browsers do (RFC 7578 §4.2): escape `"`, CR and LF."""
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _field_head(boundary: str, name: str) -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()


def _file_head(boundary: str, name: str, filename: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"; '
        f'filename="{_quote(filename)}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


def part_overhead(boundary_len: int, field_name: str, filename: str) -> int:
    """Bytes a file part adds around its content (used to pack batches under a size bound)."""
    return len(_file_head("x" * boundary_len, field_name, filename)) + 2


def quoted_len(text: str) -> int:
    """The bytes `text` takes in a part header: `part_overhead` is linear in the field's and file's quoted
    lengths, so a planner can add them up without framing each part."""
    return len(_quote(text).encode())


def fields_size(boundary_len: int, fields: Sequence[tuple[str, str]]) -> int:
    """Bytes the form fields take in a body (they count against the bound of every batch that carries them)."""
    return sum(len(_field_head("x" * boundary_len, n)) + len(v.encode()) + 2 for n, v in fields)


@dataclass
class MultipartBody:
    """Form fields then files; `size` is exact and `chunks()` can be called again for a retry."""

    fields: Sequence[tuple[str, str]]
    files: Sequence[tuple[str, UploadFile]]  # (form field name, file)
    boundary: str = ""

    def __post_init__(self) -> None:
        if not self.boundary:
            self.boundary = "dsgen-" + secrets.token_hex(12)
        self._heads = [_field_head(self.boundary, n) + v.encode() + b"\r\n" for n, v in self.fields]
        self._file_heads = [_file_head(self.boundary, n, f.name) for n, f in self.files]
        self._tail = f"--{self.boundary}--\r\n".encode()
        self.size = (
            sum(map(len, self._heads))
            + sum(len(h) + f.size + 2 for h, (_, f) in zip(self._file_heads, self.files, strict=True))
            + len(self._tail)
        )

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def chunks(self) -> Iterator[bytes]:
        """The body in ~1 MiB pieces (small parts are joined to save system calls)."""
        buf = bytearray()
        for head in self._heads:
            buf += head
        for head, (_, f) in zip(self._file_heads, self.files, strict=True):
            buf += head
            if f.data is not None:
                buf += f.data
            else:
                with open(f.path, "rb") as fh:  # type: ignore[arg-type]
                    while block := fh.read(_READ):
                        buf += block
                        if len(buf) >= _FLUSH:
                            yield bytes(buf)
                            buf.clear()
            buf += b"\r\n"
            if len(buf) >= _FLUSH:
                yield bytes(buf)
                buf.clear()
        buf += self._tail
        yield bytes(buf)
