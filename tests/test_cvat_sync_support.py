"""Shared set-up of the CVAT round-trip tests (no tests here): a facade with the CVAT mixin, a small
imported dataset with real JPEGs, and a saved connection to a fake CVAT."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.facade_cvat import CvatFacade
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

FAST_ENV = {"DSGEN_CVAT_POLL": "0.005,0.05", "DSGEN_CVAT_RETRY": "3,0.01,0.05", "DSGEN_CVAT_TIMEOUT": "10"}


CvatApi = Dsgen  # the facade carries CvatFacade
assert issubclass(CvatApi, CvatFacade)


@pytest.fixture
def capi(dsgen_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    api = CvatApi.open()
    yield api
    api.app.close()


@pytest.fixture(scope="session")
def sample_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real JPEGs with boxes, polygons, RLE masks and attributes; nested file names."""
    root = tmp_path_factory.mktemp("cvat-sync-src")
    generate_cvat_coco(root, SampleSpec(num_images=12, seed=5, workers=1, resolutions=((96, 64), (80, 60)),
                                        polygon_fraction=0.3, rle_fraction=0.15, mean_boxes=4))
    return root


@pytest.fixture(scope="session")
def precise_export(sample_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with coordinates of 9 decimals (as converters and model outputs write them): CVAT rounds
    them to 2 on the way in, so its export of an unchanged task differs from ours by up to 0.005 px."""
    root = tmp_path_factory.mktemp("cvat-sync-precise") / "export"
    shutil.copytree(sample_export, root)
    path = root / "annotations" / "instances_default.json"
    doc = json.loads(path.read_text())
    for a in doc["annotations"]:
        d = 0.001234567 + (a["id"] % 5) * 0.000713
        a["bbox"][:2] = [a["bbox"][0] + d, a["bbox"][1] + d]
        if isinstance(a.get("segmentation"), list):
            a["segmentation"] = [[v + d for v in p] for p in a["segmentation"]]
    path.write_text(json.dumps(doc))
    return root


ORIENTED = {0: 6, 1: 3, 2: 8}  # image index in the sample → the EXIF orientation its file gets


@pytest.fixture(scope="session")
def oriented_export(sample_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with three files tagged with an EXIF orientation (6, 3, 8), as phones write them: the stored
    pixels and the COCO (sizes, boxes) stay as they were, so viewers and CVAT show those images turned."""
    from PIL import Image

    root = tmp_path_factory.mktemp("cvat-sync-oriented") / "export"
    shutil.copytree(sample_export, root)
    doc = json.loads((root / "annotations" / "instances_default.json").read_text())
    for k, orientation in ORIENTED.items():
        path = root / "images" / doc["images"][k]["file_name"]
        with Image.open(path) as im:
            pixels = im.copy()
        exif = Image.Exif()
        exif[0x0112] = orientation
        pixels.save(path, "JPEG", quality=92, exif=exif)
    return root


def kill_when(proc: subprocess.Popen, reached: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """SIGKILL `proc` (and its process group, when it leads one) once `reached()` holds: a job cut off mid-way."""
    def kill() -> None:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    try:
        deadline = time.monotonic() + timeout
        while not reached():
            if time.monotonic() > deadline:
                pytest.fail(f"{what} was never reached")
            time.sleep(0.05)
    finally:
        kill()


def import_version(api: CvatApi, actor, path: Path, group: str = "cars") -> int:  # noqa: ANN001
    started = api.start_import(actor, ImportRequest(path=str(path), group=group))
    info = api.run_job_here(actor, started.job_id)
    assert info.status == "SUCCEEDED", info.error
    return started.version_id


def connect(api: CvatApi, actor, fake, name: str = "fake") -> int:  # noqa: ANN001
    return api.add_cvat_connection(actor, name, fake.url, username=fake.username, secret=fake.password).id


def import_on_share(api: CvatApi, actor, sample: Path, share: Path, group: str = "nas") -> int:  # noqa: ANN001
    """Copy the sample to `share/cam3` and register it there in place: a NAS that dsgen and CVAT both mount."""
    shutil.copytree(sample, share / "cam3")
    started = api.start_import(actor, ImportRequest(path=str(share / "cam3"), group=group, in_place=True))
    info = api.run_job_here(actor, started.job_id)
    assert info.status == "SUCCEEDED", info.error
    return started.version_id
