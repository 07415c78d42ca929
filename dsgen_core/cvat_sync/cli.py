"""`dsgen cvat …`: connections, export, exports list/resume, pull (preview, then commit on confirmation)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def _api_actor(args: argparse.Namespace) -> tuple[Any, Any]:
    from dsgen_core.cli import _actor, _api

    api = _api()
    return api, _actor(api, args)


def cmd_connect(args: argparse.Namespace) -> int:
    api, actor = _api_actor(args)
    secret = os.environ.get("DSGEN_CVAT_SECRET") or getpass.getpass("CVAT password or token: ")
    info = api.add_cvat_connection(actor, args.name, args.url, username=args.username or "", secret=secret,
                                   auth_kind=args.auth, org=args.org, check=not args.no_check,
                                   share_root=args.share_root, cloud_storage_id=args.cloud_storage)
    print(f"saved CVAT connection {info}")
    return EXIT_OK


def cmd_connections(args: argparse.Namespace) -> int:
    api, actor = _api_actor(args)
    for c in api.list_cvat_connections(actor):
        print(f"{c.id:>4}  {c}  [{c.auth_kind}]")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from dsgen_core.cli import follow_job
    from dsgen_core.cvat_sync.records import ExifChoiceNeeded, ExportRequest

    api, actor = _api_actor(args)
    conn: int | str = int(args.connection) if args.connection.isdigit() else args.connection
    req = ExportRequest(version_id=args.version, connection=conn, project=args.project, task_name=args.task_name,
                        query=args.query or "", max_images_per_task=args.max_images, segment_size=args.segment_size,
                        image_quality=args.quality, preload_annotations=not args.no_annotations,
                        send_references=args.references, exif=args.exif)
    if args.dry_run:
        return print_export_preview(api.preview_cvat_export(actor, req))
    try:
        started = api.start_cvat_export(actor, req)
    except ExifChoiceNeeded as exc:
        print(f"error: {exc}.\nchoose with --exif rotate or --exif as-is (--dry-run lists the images)",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"export {started.export_id} queued: job {started.job_id}, {started.num_images} images in "
          f"{started.num_tasks} task(s)")
    return _finish_export(api, actor, started, follow_job, args.wait)


def print_export_preview(p: Any) -> int:
    """What `export --dry-run` shows; exit 1 when the export would be refused as it stands."""
    how = "file references" if p.send_references else "image bytes"
    print(f"dry run: {p.num_images} images in {p.num_tasks} task(s) ({', '.join(p.task_names[:5])}"
          f"{', …' if p.num_tasks > 5 else ''}) as {how} over CVAT connection {p.connection!r}; nothing sent")
    if not p.oriented:
        return EXIT_OK
    print(f"{len(p.oriented)} image(s) carry an EXIF orientation (CVAT shows them turned):")
    for o in p.oriented[:10]:
        print(f"  {o}")
    if len(p.oriented) > 10:
        print(f"  … and {len(p.oriented) - 10} more")
    if p.needs_exif_choice:
        print("the export needs --exif rotate (sent upright, shapes turned with them) or --exif as-is "
              "(sent unchanged)", file=sys.stderr)
        return EXIT_FAILED
    print("they go upright with their shapes turned (--exif rotate)" if p.exif == "rotate" else
          "they go unchanged (--exif as-is)")
    return EXIT_OK


def _finish_export(api: Any, actor: Any, started: Any, follow_job: Any, wait: bool) -> int:
    if not wait:
        print(f"follow it with: dsgen jobs show {started.job_id} --follow")
        return EXIT_OK
    info = follow_job(api, actor, started.job_id)
    export = api.get_cvat_export(actor, started.export_id)
    if info.status != "SUCCEEDED":
        print(f"export FAILED: {info.error}\nresume it with: dsgen cvat resume {export.id}", file=sys.stderr)
        return EXIT_FAILED
    for t in export.tasks:
        print(f"task {t.task_id}: {t.url} ({t.num_images} images)")
    return EXIT_OK


def cmd_exports(args: argparse.Namespace) -> int:
    api, actor = _api_actor(args)
    for e in api.list_cvat_exports(actor):
        how = " by reference" if e.send_references else ""
        print(f"{e.id:>4}  {e.status:<9} version {e.version_id}  {e.num_images} images{how}  {e.server_url}  "
              f"query={e.query!r}  tasks: {_task_list(e.tasks)}" + (f"  error: {e.error}" if e.error else ""))
    return EXIT_OK


def _task_list(tasks: list[Any]) -> str:
    """The CVAT ids of an export's tasks, and how many are only planned (not created in CVAT)."""
    ids = [str(t.task_id) for t in tasks if t.task_id is not None]
    planned = len(tasks) - len(ids)
    if not ids:
        return f"none created ({planned} planned)"
    return ", ".join(ids) + (f" (+{planned} not created yet)" if planned else "")


def cmd_resume(args: argparse.Namespace) -> int:
    from dsgen_core.cli import follow_job

    api, actor = _api_actor(args)
    started = api.resume_cvat_export(actor, args.export)
    print(f"export {started.export_id} resumed: job {started.job_id}")
    return _finish_export(api, actor, started, follow_job, args.wait)


def print_diff(d: Any, limit: int | None = 30) -> None:
    """The pull preview: counts, class and frame changes, then the changes themselves (`limit` of them)."""
    print(f"images: {d.images_matched} matched of {d.images_in_task} in CVAT, {d.images_changed} changed")
    print(f"annotations: +{d.added} added, -{d.removed} removed, {d.moved} moved, {d.relabeled} relabeled, "
          f"{d.attributes_changed} with changed attributes, {d.unchanged} unchanged")
    for old, new in d.classes_renamed:
        print(f"class renamed: {old} → {new}")
    for name in d.classes_added:
        print(f"class added: {name}")
    if d.images_deleted:
        print(f"{len(d.images_deleted)} image(s) deleted in CVAT: {', '.join(d.images_deleted[:10])}"
              f"{' …' if len(d.images_deleted) > 10 else ''}; the new version leaves them out, with their "
              f"{d.annotations_of_deleted} annotation(s)")
    if d.images_not_matched:
        print(f"{len(d.images_not_matched)} CVAT frame(s) match no image: {', '.join(d.images_not_matched[:10])}")
    if d.images_missing:
        print(f"{len(d.images_missing)} exported image(s) are no longer in CVAT: {', '.join(d.images_missing[:10])}")
    if d.frames_resized:
        print(f"{d.frames_resized} frame(s) have another size in CVAT (it applied their EXIF orientation); "
              "our sizes are kept")
    shown = d.changes if limit is None else d.changes[:limit]
    for c in shown:
        print(f"  {c.change:<10} {c.file_name}  {c.category}  {c.detail}")
    if len(d.changes) > len(shown):
        print(f"  … and {len(d.changes) - len(shown)} more change(s) (--all prints every one)")


def cmd_pull(args: argparse.Namespace) -> int:
    from dsgen_core.cli import follow_job

    api, actor = _api_actor(args)
    preview = api.preview_pull(actor, args.task, into=args.into, connection=args.connection)
    print_diff(preview.diff, limit=None if args.all else 30)
    if args.dry_run:
        return EXIT_OK
    if preview.diff.is_zero and not args.even_if_unchanged:
        print("nothing changed: CVAT has the annotations as they were exported; no version created "
              "(--even-if-unchanged creates an identical one)")
        return EXIT_OK
    if not args.yes and input("create the new version? [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing written")
        return EXIT_OK
    started = api.commit_pull(actor, preview.pull_id, even_if_unchanged=args.even_if_unchanged)
    info = follow_job(api, actor, started.job_id)
    if info.status != "SUCCEEDED":
        print(f"pull FAILED: {info.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"READY: {preview.group}/{preview.split} v{started.version} (version id {started.version_id})")
    return EXIT_OK


def add_cvat_commands(sub: Any) -> None:
    """The `cvat` command group; importing the job modules also registers their kinds for `dsgen worker`."""
    from dsgen_core.cvat_sync import jobs  # noqa: F401 - registers the job kinds

    cv = sub.add_parser("cvat", help="export subsets to CVAT and pull relabeled annotations back").add_subparsers(
        dest="sub", required=True)
    c = cv.add_parser("connect", help="save a CVAT server and your credentials (secret from $DSGEN_CVAT_SECRET "
                                      "or a prompt)")
    c.add_argument("name")
    c.add_argument("url")
    c.add_argument("--username")
    c.add_argument("--auth", default="login", choices=["login", "basic", "token", "pat"])
    c.add_argument("--org")
    c.add_argument("--no-check", action="store_true", help="save without logging in")
    c.add_argument("--share-root", help="folder of this machine that CVAT mounts as its share: exports of images "
                                        "under it can send references instead of bytes (`export --references`)")
    c.add_argument("--cloud-storage", type=int, help="with --share-root: the id of the CVAT cloud storage that "
                                                    "holds what that folder holds, under the same paths")
    c.set_defaults(func=cmd_connect)
    cv.add_parser("connections", help="your saved CVAT connections").set_defaults(func=cmd_connections)
    e = cv.add_parser("export", help="export a version (optionally filtered) as CVAT task(s)")
    e.add_argument("version", type=int, help="version id")
    e.add_argument("--query", default="", help="search DSL filter, e.g. 'category:car AND NOT tag:done'")
    e.add_argument("--connection", required=True, help="connection name or id")
    e.add_argument("--project", required=True, help="CVAT project (created with our labels if absent)")
    e.add_argument("--task-name", required=True)
    e.add_argument("--max-images", type=int, default=1000, help="images per task (more become several tasks)")
    e.add_argument("--segment-size", type=int, default=100, help="frames per CVAT job")
    e.add_argument("--quality", type=int, default=95, help="CVAT image quality 1-100")
    e.add_argument("--no-annotations", action="store_true", help="do not pre-load our annotations")
    e.add_argument("--references", action="store_true",
                   help="send file references: CVAT reads the images from the connection's share folder or cloud "
                        "storage (no image bytes are sent)")
    e.add_argument("--exif", choices=["rotate", "as-is"],
                   help="images with an EXIF orientation (CVAT shows them turned): 'rotate' sends them upright with "
                        "their shapes turned (and turns CVAT's back on pull), 'as-is' sends them unchanged; without "
                        "it such images refuse the export")
    e.add_argument("--dry-run", action="store_true", help="show what would be sent (tasks, EXIF-oriented images)")
    e.add_argument("--no-wait", dest="wait", action="store_false")
    e.set_defaults(func=cmd_export)
    cv.add_parser("exports", help="your CVAT exports with status and tasks").set_defaults(func=cmd_exports)
    r = cv.add_parser("resume", help="resume a failed export (continues its tasks)")
    r.add_argument("export", type=int)
    r.add_argument("--no-wait", dest="wait", action="store_false")
    r.set_defaults(func=cmd_resume)
    p = cv.add_parser("pull", help="pull a task's annotations back as a new version (shows the diff first)")
    p.add_argument("task", nargs="+", help="CVAT task id(s) or link(s)")
    p.add_argument("--into", required=True, help="dataset group the task was exported from")
    p.add_argument("--connection", help="connection name (default: the export's)")
    p.add_argument("--dry-run", action="store_true", help="show the diff only")
    p.add_argument("--yes", action="store_true", help="commit without asking")
    p.add_argument("--all", action="store_true", help="print every change (default: the first 30)")
    p.add_argument("--even-if-unchanged", action="store_true",
                   help="create the new version even when nothing changed (it then equals the exported one)")
    p.set_defaults(func=cmd_pull)
