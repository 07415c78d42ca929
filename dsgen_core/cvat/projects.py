"""Projects, labels and tasks: create, find, inspect and delete them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsgen_core.cvat.base import ClientBase
from dsgen_core.cvat.errors import CvatLabelMismatch
from dsgen_core.cvat.labels import label_problems
from dsgen_core.cvat.models import LabelSpec, Project, Task

__all__ = ["ProjectsMixin"]


class ProjectsMixin(ClientBase):
    """Projects (with their labels) and tasks; creates are never retried blindly."""

    # -- projects and labels --------------------------------------------------------------------------

    def _project(self, d: dict[str, Any]) -> Project:
        return Project(int(d["id"]), str(d["name"]), f"{self.base_url}/projects/{d['id']}")

    def list_projects(self, name: str | None = None) -> list[Project]:
        params = {"name": name} if name else {}
        return [self._project(d) for d in self._pages("api/projects", params, "list projects")
                if name is None or d.get("name") == name]

    def get_project(self, project_id: int) -> Project:
        return self._project(self._check(self._t.request("GET", f"api/projects/{project_id}"),
                                         f"get project {project_id}").json())

    def create_project(self, name: str, labels: Sequence[LabelSpec]) -> Project:
        """Not retried after an unknown outcome; look it up with `list_projects(name)` before re-creating."""
        body = {"name": name, "labels": [lab.to_api() for lab in labels]}
        resp = self._t.request("POST", "api/projects", json=body, idempotent=False)
        return self._project(self._check(resp, f"create project {name!r}", ok=(201,)).json())

    def project_labels(self, project_id: int) -> list[LabelSpec]:
        return [LabelSpec.from_api(d) for d in self._pages("api/labels", {"project_id": project_id},
                                                            f"get the labels of project {project_id}")]

    def task_labels(self, task_id: int) -> list[LabelSpec]:
        self.get_task(task_id)  # a deleted task → CvatTaskDeleted rather than an empty label list
        return [LabelSpec.from_api(d) for d in self._pages("api/labels", {"task_id": task_id},
                                                            f"get the labels of task {task_id}")]

    def ensure_project(self, name: str, labels: Sequence[LabelSpec]) -> Project:
        """The project called `name`, created with `labels` if absent; CvatLabelMismatch if its labels differ."""
        return self.ensure_project_labels(name, labels)[0]

    def ensure_project_labels(self, name: str, labels: Sequence[LabelSpec]) -> tuple[Project, list[LabelSpec]]:
        """`ensure_project` and the project's labels in CVAT's order, read once (a new project has ours)."""
        found = self.list_projects(name)
        if not found:
            return self.create_project(name, labels), list(labels)
        project = found[0]
        existing = self.project_labels(project.id)
        problems = label_problems(existing, labels)
        if problems:
            raise CvatLabelMismatch(
                f"CVAT project {name!r} (id {project.id}) has labels that do not match ours: " + "; ".join(problems),
                problems,
            )
        return project, existing
    # -- tasks ----------------------------------------------------------------------------------------

    def _task(self, d: dict[str, Any]) -> Task:
        return Task(
            id=int(d["id"]),
            name=str(d.get("name", "")),
            project_id=d.get("project_id"),
            size=int(d.get("size") or 0),
            segment_size=int(d.get("segment_size") or 0),
            status=str(d.get("status", "")),
            url=f"{self.base_url}/tasks/{d['id']}",
            raw=d,
        )

    def create_task(
        self,
        name: str,
        *,
        project_id: int | None = None,
        labels: Sequence[LabelSpec] | None = None,
        segment_size: int,
        overlap: int | None = None,
    ) -> Task:
        """An empty task; jobs cannot be re-split later, so `segment_size` is required. Not retried blindly."""
        if (project_id is None) == (labels is None):
            raise ValueError("give exactly one of project_id or labels")
        if segment_size < 1:
            raise ValueError("segment_size must be >= 1")
        body: dict[str, Any] = {"name": name, "segment_size": segment_size}
        if project_id is not None:
            body["project_id"] = project_id
        else:
            body["labels"] = [lab.to_api() for lab in labels or ()]
        if overlap is not None:
            body["overlap"] = overlap
        resp = self._t.request("POST", "api/tasks", json=body, idempotent=False)
        return self._task(self._check(resp, f"create task {name!r}", ok=(201,)).json())

    def get_task(self, task_id: int) -> Task:
        """The task; CvatTaskDeleted if it no longer exists."""
        resp = self._t.request("GET", f"api/tasks/{task_id}")
        return self._task(self._check(resp, f"get task {task_id}", task_id=task_id).json())

    def list_tasks(self, project_id: int | None = None, name: str | None = None) -> list[Task]:
        params: dict[str, Any] = {}
        if project_id is not None:
            params["project_id"] = project_id
        if name:
            params["name"] = name
        return [self._task(d) for d in self._pages("api/tasks", params, "list tasks")
                if name is None or d.get("name") == name]

    def delete_task(self, task_id: int, missing_ok: bool = True) -> bool:
        """Delete a task; False if it was already gone (and `missing_ok`)."""
        resp = self._t.request("DELETE", f"api/tasks/{task_id}")
        if resp.status_code == 404 and missing_ok:
            return False
        self._check(resp, f"delete task {task_id}", ok=(204, 200), task_id=task_id)
        return True

    def data_meta(self, task_id: int) -> dict[str, Any]:
        """`GET /api/tasks/{id}/data/meta`: the frames as CVAT built them (names, sizes after EXIF orientation)
        and `deleted_frames`, which CVAT's COCO export does not reflect."""
        resp = self._t.request("GET", f"api/tasks/{task_id}/data/meta")
        return self._check(resp, f"get the frames of task {task_id}", task_id=task_id).json()

    def deleted_frames(self, task_id: int) -> list[str]:
        """The names of the frames deleted in CVAT (hidden there, still listed in its COCO export)."""
        meta = self.data_meta(task_id)
        frames = meta.get("frames") or []
        return [str(frames[i]["name"]) for i in sorted(set(meta.get("deleted_frames") or [])) if 0 <= i < len(frames)]

    def task_status(self, task_id: int) -> dict[str, Any]:
        """The legacy `GET /api/tasks/{id}/status` (state of the data upload: Queued/Started/Finished/Failed)."""
        resp = self._t.request("GET", f"api/tasks/{task_id}/status")
        return self._check(resp, f"get the status of task {task_id}", task_id=task_id).json()
