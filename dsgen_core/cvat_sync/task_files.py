"""The image files of an export's tasks, prepared on a helper thread in task order - local paths, sizes, upright
copies for the "rotate" remedy - so each upload starts the moment CVAT has its task."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from dsgen_core.catalog.cvat_models import CvatExportTask
from dsgen_core.cvat import UploadFile
from dsgen_core.cvat_sync.outgoing import Turned
from dsgen_core.lake.tables import DatasetTables

__all__ = ["TaskFiles"]


class TaskFiles:
    """`get(task)`: its files in frame order (None when the export sends references: CVAT reads the files)."""

    def __init__(self, storage: Any, sub: DatasetTables, tasks: list[CvatExportTask], turned: Turned, folder: Path,
                 by_reference: bool):
        self._storage, self._sub, self._turned, self._folder = storage, sub, turned, folder
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="cvat-files")
        self._files: dict[int, Future[list[UploadFile]]] = {} if by_reference else {
            t.id: self._pool.submit(self._prepare, t) for t in tasks if t.state != "done"}

    def _prepare(self, t: CvatExportTask) -> list[UploadFile]:
        from dsgen_core.cvat_sync.orientation import upright_copy
        from dsgen_core.cvat_sync.subset import image_paths

        paths = image_paths(self._storage, self._sub, t.image_ids)
        files = [UploadFile(name, upright_copy(p, self._folder / "upright" / name) if i in self._turned else p)
                 for i, p, name in zip(t.image_ids, paths, t.frame_names, strict=True)]
        for f in files:
            _ = f.size  # read once here, not while the upload plans its batches
        return files

    def get(self, t: CvatExportTask) -> list[UploadFile] | None:
        return self._files[t.id].result() if self._files else None

    def ready(self, t: CvatExportTask) -> None:
        """Wait until `t`'s files are prepared (successfully or not)."""
        if t.id in self._files:
            wait([self._files[t.id]])

    def close(self) -> None:
        for f in self._files.values():
            f.cancel()
        self._pool.shutdown(wait=True)
