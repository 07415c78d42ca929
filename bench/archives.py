"""Benchmark: extracting an export with every safety check against plain `unzip`/`tar` and `extractall`.

The same archive, in the same run, extracted into a fresh folder by:

* `unzip -q` (Info-ZIP, Debian) or `tar -xf` — the tools users run by hand;
* Python's `zipfile.ZipFile.extractall` / `tarfile.TarFile.extractall` — no checks at all;
* dsgen: `Archive` (scan: names decoded and refused when unsafe, types, duplicates, declared total and
  ratio against the limits) + `extract` of every file member with the written-bytes budget — what an
  import does with an archive whose images the annotations all list;
* dsgen's scan alone — what a check pays before it reads anything.

Archives: a CVAT-shaped zip of JPEG-sized members (incompressible), a zip of many small members (where
per-member overhead shows), and the first as .tar.gz. Rounds rotate the order; medians are printed with
the ratio ours / plain tool and ours / extractall.

    python bench/archives.py                       # 2,000 x 60 KB and 20,000 x 1 KB, 5 rounds
    python bench/archives.py --images 300 --small 2000 --rounds 2   # quick run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsgen_core.importing.archive_limits import ArchiveLimits, Budget  # noqa: E402
from dsgen_core.importing.archives import Archive  # noqa: E402


def make_zip(path: Path, n: int, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("annotations/instances_default.json", b'{"images": []}' * 1000)
        for i in range(n):
            zf.writestr(f"images/sub{i % 20}/frame_{i:06d}.jpg", os.urandom(size))
    return path


def make_tgz(src_zip: Path, path: Path, work: Path) -> Path:
    unpacked = work / "for-tar"
    with zipfile.ZipFile(src_zip) as zf:
        zf.extractall(unpacked)
    with tarfile.open(path, "w:gz") as tf:
        for p in sorted(unpacked.rglob("*")):
            tf.add(p, p.relative_to(unpacked).as_posix(), recursive=False)
    shutil.rmtree(unpacked)
    return path


def dsgen_extract(archive: Path, dest: Path) -> None:
    limits = ArchiveLimits.for_folder(dest.parent)
    a = Archive(archive, archive.name, limits)
    try:
        a.extract(list(a.files.values()), dest, Budget(limits, archive.name))
    finally:
        a.close()


def dsgen_scan(archive: Path, dest: Path) -> None:
    Archive(archive, archive.name, ArchiveLimits.for_folder(dest.parent)).close()


def plain_tool(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    if archive.suffix == ".zip":
        subprocess.run(["unzip", "-q", str(archive), "-d", str(dest)], check=True)
    else:
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], check=True)


def extractall(archive: Path, dest: Path) -> None:
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")


def timed(fn: Callable[[Path, Path], None], archive: Path, work: Path) -> float:
    dest = work / "out"
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    t0 = time.perf_counter()
    fn(archive, dest)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(dest, ignore_errors=True)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000, help="JPEG-sized members of the first zip")
    ap.add_argument("--image-kb", type=int, default=60)
    ap.add_argument("--small", type=int, default=20000, help="members of the many-small-files zip")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tmp", default=None, help="where archives and extractions go (default: system tmp)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        work = Path(tmp)
        big = make_zip(work / "cvat_task.zip", args.images, args.image_kb * 1024)
        small = make_zip(work / "many_small.zip", args.small, 1024)
        tgz = make_tgz(big, work / "cvat_task.tar.gz", work)
        cases = [(f"zip, {args.images:,} x {args.image_kb} KB", big), (f"zip, {args.small:,} x 1 KB", small),
                 (f"tar.gz, {args.images:,} x {args.image_kb} KB", tgz)]
        runners = {"plain tool": plain_tool, "extractall": extractall, "dsgen extract": dsgen_extract,
                   "dsgen scan only": dsgen_scan}
        rows = []
        for label, archive in cases:
            times: dict[str, list[float]] = {k: [] for k in runners}
            names = list(runners)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    times[name].append(timed(runners[name], archive, work))
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((label, archive.stat().st_size, med))
    tool = "unzip -q / tar -xzf"
    print(f"\nmedians of {args.rounds} rounds (seconds); ratios are dsgen / baseline\n")
    print(f"| archive | size | {tool} | extractall | dsgen extract (all checks) | dsgen scan only | "
          "extract / tool | extract / extractall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, size, med in rows:
        print(f"| {label} | {size / 1e6:,.1f} MB | {med['plain tool']:.3f} | {med['extractall']:.3f} | "
              f"{med['dsgen extract']:.3f} | {med['dsgen scan only']:.3f} | "
              f"{med['dsgen extract'] / med['plain tool']:.2f}x | {med['dsgen extract'] / med['extractall']:.2f}x |")


if __name__ == "__main__":
    main()
