"""A small, explicit CVAT client: one method per REST operation dsgen needs, version-aware.

Every method is one step a job can record and resume from (e.g. store the task id returned by
`create_task` before calling `upload_images`). Long server work returns an `rq_id`; `wait` polls it.
The calls are grouped by concern: `base` (connecting, checking answers), `projects` (projects, labels,
tasks), `polling` (requests API), `images` (data upload), `annotations` (import, export, download).
"""

from __future__ import annotations

from dsgen_core.cvat.annotations import AnnotationsMixin
from dsgen_core.cvat.base import COCO, PollPolicy
from dsgen_core.cvat.images import ImagesMixin

__all__ = ["COCO", "CvatClient", "PollPolicy"]


class CvatClient(AnnotationsMixin, ImagesMixin):
    """Talks to one CVAT server as one user. Create with `CvatClient.connect(url, credentials)`."""
