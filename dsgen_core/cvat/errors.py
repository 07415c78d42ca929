"""Errors of the CVAT client: each names what went wrong in words a user can act on, never a secret."""

from __future__ import annotations

from dsgen_core.errors import DsgenError

__all__ = [
    "CvatAuthError",
    "CvatError",
    "CvatHttpError",
    "CvatLabelMismatch",
    "CvatNotAcceptable",
    "CvatNotFound",
    "CvatRequestFailed",
    "CvatTaskDeleted",
    "CvatUnavailable",
    "CvatUnsupportedVersion",
    "CvatWrongUrl",
]


class CvatError(DsgenError):
    """Base of every CVAT client error; the message is safe to show (no tokens, no passwords)."""


class CvatWrongUrl(CvatError):
    """Something answered at the URL, but it is not a CVAT server (or not its API root)."""


class CvatUnavailable(CvatError):
    """CVAT could not be reached or kept failing (connection refused, 502/503/504, timeouts) after retries."""


class CvatAuthError(CvatError):
    """CVAT rejected the credentials (bad username/password, invalid or expired token)."""


class CvatUnsupportedVersion(CvatError):
    """The server's CVAT version is outside what the client speaks."""


class CvatHttpError(CvatError):
    """CVAT refused a call with a status we do not map to a more specific error."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class CvatNotAcceptable(CvatHttpError):
    """CVAT cannot render its answer in the media type we asked for (406): a client problem, not a wrong URL."""

    def __init__(self, message: str):
        super().__init__(message, 406)


class CvatNotFound(CvatHttpError):
    """A project, request or file does not exist (404)."""


class CvatTaskDeleted(CvatNotFound):
    """The task is gone from CVAT (deleted there, e.g. before the pull-back)."""

    def __init__(self, message: str, task_id: int):
        super().__init__(message, 404)
        self.task_id = task_id


class CvatLabelMismatch(CvatError):
    """The labels we need do not match those of an existing CVAT project or task."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


class CvatRequestFailed(CvatError):
    """An asynchronous CVAT request (task creation, import, export) ended as failed."""

    def __init__(self, message: str, rq_id: str):
        super().__init__(message)
        self.rq_id = rq_id
