"""Decoding member names the way users' unzip tools do, and saying which way was used.

A zip stores names as bytes. Marked UTF-8 (flag bit 11) or carried in Info-ZIP's Unicode Path extra
field (0x7075) they are unambiguous; Info-ZIP `zip` on Linux writes UTF-8 without the flag, and
Windows archivers write the system's legacy code page (CP949 on Korean Windows, CP437 in the West).
Tar names are bytes too (UTF-8 in pax headers). Legacy code pages are chosen once per archive.
"""

from __future__ import annotations

import os
import struct
import unicodedata
import zlib
from collections.abc import Callable, Iterable

UTF8_FLAG = 0x800
UNICODE_PATH_EXTRA = 0x7075

# How a name was read -> what the report says about it. Only the first three are declared by the archive.
DECLARED = {"ascii", "utf-8", "unicode-path", "pax"}
LABELS = {
    "ascii": "plain ASCII",
    "utf-8": "UTF-8 (marked by the UTF-8 flag)",
    "unicode-path": "UTF-8 from the Info-ZIP Unicode Path field",
    "pax": "UTF-8 (pax header)",
    "utf-8-unmarked": "UTF-8 without the UTF-8 flag (as Info-ZIP zip on Linux and tar write it)",
    "cp949": "CP949 (Korean Windows archivers)",
    "cp437": "CP437 (the zip default of DOS and Western Windows)",
}


def legacy_encodings() -> tuple[str, ...]:
    """The code pages tried for names that are neither marked nor valid UTF-8, first match wins."""
    value = os.environ.get("DSGEN_ARCHIVE_LEGACY_ENCODINGS", "cp949,cp437")
    names = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    return names if "cp437" in names else (*names, "cp437")  # cp437 decodes every byte: the last resort


def label(encoding: str) -> str:
    return LABELS.get(encoding, encoding.upper())


def nfc(name: str) -> str:
    """The key names are matched under: macOS writes decomposed (NFD) names, most tools composed ones."""
    return unicodedata.normalize("NFC", name)


def unicode_path_field(extra: bytes, raw: bytes) -> str | None:
    """The name in a 0x7075 extra field, if present and written for exactly these header bytes."""
    pos = 0
    while pos + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, pos)
        data = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if field_id != UNICODE_PATH_EXTRA or len(data) < 5 or data[0] != 1:
            continue
        (crc,) = struct.unpack_from("<I", data, 1)
        if crc != zlib.crc32(raw):  # the name was changed by a tool that did not update the field
            return None
        try:
            return data[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def decode_unmarked(raw: bytes) -> tuple[str | None, str]:
    """ASCII or valid UTF-8 as such; otherwise (None, "legacy"): decided per archive by `choose_legacy`."""
    if raw.isascii():
        return raw.decode("ascii"), "ascii"
    try:
        return raw.decode("utf-8"), "utf-8-unmarked"
    except UnicodeDecodeError:
        return None, "legacy"


def zip_name(info: object) -> tuple[bytes, str | None, str]:
    """(raw bytes, decoded name or None for legacy, how) of one zipfile.ZipInfo."""
    stored: str = info.orig_filename  # type: ignore[attr-defined]
    if info.flag_bits & UTF8_FLAG:  # type: ignore[attr-defined]
        return stored.encode("utf-8"), stored, "utf-8"
    raw = stored.encode("cp437")  # zipfile decoded the bytes as CP437, which maps all 256 of them
    extra = unicode_path_field(info.extra, raw)  # type: ignore[attr-defined]
    if extra is not None:
        return raw, extra, "unicode-path"
    name, how = decode_unmarked(raw)
    return raw, name, how


def tar_name(info: object) -> tuple[bytes, str | None, str]:
    """(raw bytes, decoded name or None for legacy, how) of one tarfile.TarInfo read as UTF-8/surrogateescape."""
    name: str = info.name  # type: ignore[attr-defined]
    raw = name.encode("utf-8", "surrogateescape")
    if "path" in info.pax_headers:  # type: ignore[attr-defined]
        return raw, name, "pax"
    decoded, how = decode_unmarked(raw)
    return raw, decoded, how


def choose_legacy(raws: Iterable[bytes], score: Callable[[list[str]], int] | None = None) -> str:
    """The code page for an archive's legacy names: with `score` (how many decoded names the annotations
    list), the one that scores highest, earlier ones winning ties; otherwise the first that decodes them all."""
    raws = list(raws)
    candidates = []
    for encoding in legacy_encodings():
        try:
            candidates.append((encoding, [raw.decode(encoding) for raw in raws]))
        except (UnicodeDecodeError, LookupError):
            continue
    if score is None or len(candidates) == 1:
        return candidates[0][0]
    return max(candidates, key=lambda c: (score(c[1]), -candidates.index(c)))[0]
