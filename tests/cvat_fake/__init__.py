"""A fake CVAT server for tests and benchmarks: real HTTP on loopback, versions 2.16 to 2.7x (see docs/cvat.md)."""

from .server import FakeCvat, Fault, Recorded, free_port

__all__ = ["Fault", "FakeCvat", "Recorded", "free_port"]
