"""Pytest fixtures for the fake CVAT; test modules import them (`from cvat_fake.fixtures import ...`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dsgen_core.cvat import CvatClient, PollPolicy, RetryPolicy
from dsgen_core.cvat.models import Credentials
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco

from .server import FakeCvat

FAST_POLL = PollPolicy(initial=0.005, factor=1.5, maximum=0.05, timeout=30.0)
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def make_fake(tmp_path: Path) -> Iterator[Callable[..., FakeCvat]]:
    """Start fake CVAT servers (any version, any knobs); all are stopped after the test."""
    started: list[FakeCvat] = []

    def make(version: str = "2.23.1", **kwargs: Any) -> FakeCvat:
        fake = FakeCvat(version, root=tmp_path / f"cvat-{len(started)}", **kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_cvat(make_fake: Callable[..., FakeCvat]) -> FakeCvat:
    return make_fake()


def client_for(fake: FakeCvat, credentials: Credentials | None = None, **kwargs: Any) -> CvatClient:
    """A connected client with fast polling and retries (test timing only; behaviour is the same)."""
    kwargs.setdefault("poll", FAST_POLL)
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("timeout", 10.0)
    return CvatClient.connect(fake.url, credentials or Credentials.login(fake.username, fake.password), **kwargs)


@pytest.fixture(scope="session")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CVAT COCO export (real JPEGs, boxes, polygons, RLE, attributes) shared by the CVAT tests."""
    root = tmp_path_factory.mktemp("cvat-export")
    spec = SampleSpec(num_images=8, seed=11, workers=1, resolutions=((96, 64), (80, 60)), polygon_fraction=0.4,
                      rle_fraction=0.2, mean_boxes=5)
    generate_cvat_coco(root, spec)
    return root


def load_doc(export: Path) -> dict[str, Any]:
    return json.loads((export / "annotations" / "instances_default.json").read_text())
