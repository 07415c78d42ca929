"""dsgen's CVAT client (httpx): version-aware REST calls for the export / pull-back round trip. See docs/cvat.md."""

from dsgen_core.cvat.client import COCO, CvatClient, PollPolicy
from dsgen_core.cvat.errors import (
    CvatAuthError,
    CvatError,
    CvatHttpError,
    CvatLabelMismatch,
    CvatNotAcceptable,
    CvatNotFound,
    CvatRequestFailed,
    CvatTaskDeleted,
    CvatUnavailable,
    CvatUnsupportedVersion,
    CvatWrongUrl,
)
from dsgen_core.cvat.labels import coco_problems, label_problems, labels_from_coco, read_coco
from dsgen_core.cvat.models import (
    AttributeSpec,
    Credentials,
    LabelSpec,
    Project,
    RequestStatus,
    ServerInfo,
    Task,
    UploadFile,
    UploadReport,
)
from dsgen_core.cvat.transport import RetryPolicy
from dsgen_core.cvat.upload import flat_names
from dsgen_core.cvat.versions import Features, ServerVersion

__all__ = [
    "COCO",
    "AttributeSpec",
    "Credentials",
    "CvatAuthError",
    "CvatClient",
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
    "Features",
    "LabelSpec",
    "PollPolicy",
    "Project",
    "RequestStatus",
    "RetryPolicy",
    "ServerInfo",
    "ServerVersion",
    "Task",
    "UploadFile",
    "UploadReport",
    "coco_problems",
    "flat_names",
    "label_problems",
    "labels_from_coco",
    "read_coco",
]
