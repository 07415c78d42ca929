"""`dsgen` command line: a thin face on the facade, with progress bars and clear exit codes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from dsgen_core.errors import DsgenError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _api():
    from dsgen_core.api import Dsgen

    return Dsgen.open()


def _actor(api, args):  # noqa: ANN001
    from dsgen_core.cli_access import acting_user

    return acting_user(api, args)


def _unit(stage: str) -> str:
    """What a stage counts: images, unless its name says tasks ("creating tasks")."""
    return "task" if "tasks" in stage.split(" (")[0].split() else "img"


class _JobBar:
    """One tqdm bar per job stage that counts something; a plain line for the other stages."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.stage: str | None = None

    def __call__(self, stage: str, processed: int, total: int) -> None:
        if stage != self.stage:
            self.close(complete=True)  # a job leaves a stage once it is done (polling may not have seen the end)
            self.stage = stage
            if not total:
                print(f"{stage} ...", file=sys.stderr, flush=True)
        if total and self.bar is None:
            self.bar = tqdm(total=total, desc=stage, unit=_unit(stage), leave=True, file=sys.stderr)
        if self.bar is not None:
            if self.bar.total != total:
                self.bar.total = total
            self.bar.n = processed
            self.bar.refresh()

    def close(self, complete: bool = False) -> None:
        if self.bar is not None:
            if complete and self.bar.total:
                self.bar.n = self.bar.total
                self.bar.refresh()
            self.bar.close()
            self.bar = None


def follow_job(api, actor, job_id: int, run_here: bool | None = None):  # noqa: ANN001
    """Follow a job to its end; run it in this process when no worker is up. Returns the JobInfo."""
    bar = _JobBar()
    try:
        if run_here is None:
            run_here = api.live_workers() == 0
        if run_here:
            print(f"no worker running: running job {job_id} in this process", file=sys.stderr)
            info = api.run_job_here(actor, job_id, on_progress=bar)
            if not info.finished:  # a worker took it after all
                return follow_job(api, actor, job_id, run_here=False)
            return info
        while True:
            info = api.get_job(actor, job_id)
            if info.finished:  # its last stage ("done") says nothing the caller's summary will not
                bar.close(complete=info.status == "SUCCEEDED")
                return info
            bar(info.stage or "queued: waiting for a worker", info.processed, info.total)
            time.sleep(0.3)
    finally:
        bar.close()


def cmd_import(args) -> int:  # noqa: ANN001
    from dsgen_core.api import ImportRequest

    api = _api()
    actor = _actor(api, args)
    req = ImportRequest(
        path=args.path, group=args.group, split=args.split, dataset_type=args.type, modality=args.modality,
        task_types=args.task or ["detection"], images_path=args.images, annotations_path=args.annotations,
        in_place=args.in_place, annotations_only=args.annotations_only, description=args.description or "",
    )
    if args.check:
        report = api.check_import_path(actor, req)
        print(report.render_text())
        return EXIT_FAILED if report.has_errors else EXIT_OK
    started = api.start_import(actor, req)
    print(f"import queued: job {started.job_id}, {args.group}/{args.split} v{started.version} (version id {started.version_id})")
    if not args.wait:
        print(f"follow it with: dsgen jobs show {started.job_id}")
        return EXIT_OK
    info = follow_job(api, actor, started.job_id)
    version = api.get_version(actor, started.version_id)
    print(version.validation_report.render_text())
    if info.status != "SUCCEEDED":
        print(f"import FAILED: {info.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"READY: {version.group_name}/{version.split} v{version.version}: {version.num_images} images, "
          f"{version.num_annotations} annotations, {version.num_categories} classes, hash {version.content_hash[:12]}")
    return EXIT_OK


def cmd_datasets_list(args) -> int:  # noqa: ANN001
    api = _api()
    groups = api.list_groups(_actor(api, args))
    if args.json:
        print(json.dumps([_group_json(g) for g in groups], indent=2, default=str))
        return EXIT_OK
    if not groups:
        print("no datasets yet: import one with `dsgen import PATH --group NAME`, or run `dsgen demo`")
        return EXIT_OK
    header = f"{'id':>4}  {'name':<28} {'type':<9} {'status':<10} {'images':>8} {'annots':>9} {'classes':>7}  versions"
    print(header)
    for g in groups:
        vs = ", ".join(f"{v.split}:v{v.version}[{v.status}]" for v in g.versions)
        print(f"{g.id:>4}  {g.name[:28]:<28} {g.dataset_type:<9} {g.status:<10} {g.num_images:>8} "
              f"{g.num_annotations:>9} {g.num_categories:>7}  {vs}")
    return EXIT_OK


def _group_json(g) -> dict:  # noqa: ANN001
    d = asdict(g)
    for v in d["versions"]:
        v["validation_report"] = {
            "errors": len([f for f in v["validation_report"]["findings"] if f["severity"] == "error"]),
            "warnings": len([f for f in v["validation_report"]["findings"] if f["severity"] == "warning"]),
        }
    return d


def cmd_datasets_show(args) -> int:  # noqa: ANN001
    api = _api()
    actor = _actor(api, args)
    g = api.get_group(actor, int(args.group) if args.group.isdigit() else args.group)
    print(f"{g.name} ({g.dataset_type}, {g.modality}, {', '.join(g.task_types)}), owner {g.owner}, {g.visibility}")
    for v in g.versions:
        print(f"  [{v.id}] {v.split} v{v.version} {v.status}: {v.num_images} images, {v.num_annotations} annotations, "
              f"hash {(v.content_hash or '-')[:12]}{' (in place)' if v.in_place else ''}")
        if args.report:
            print("    " + v.validation_report.render_text().replace("\n", "\n    "))
    return EXIT_OK


def cmd_export(args) -> int:  # noqa: ANN001
    api = _api()
    out = api.export_coco(_actor(api, args), args.version, Path(args.out))
    print(f"wrote {out}")
    return EXIT_OK


def cmd_jobs_list(args) -> int:  # noqa: ANN001
    api = _api()
    for j in api.list_jobs(_actor(api, args)):
        print(f"{j.id:>5} {j.kind:<12} {j.status:<10} {j.stage[:30]:<30} {j.processed}/{j.total} {j.error or ''}")
    return EXIT_OK


def cmd_jobs_show(args) -> int:  # noqa: ANN001
    api = _api()
    actor = _actor(api, args)
    if args.follow:
        info = follow_job(api, actor, args.job, run_here=False)
    else:
        info = api.get_job(actor, args.job)
    print(f"job {info.id} ({info.kind}): {info.status}, stage {info.stage!r} {info.processed}/{info.total}")
    if info.error:
        print(f"error: {info.error}")
    print(info.log.rstrip())
    return EXIT_OK if info.status != "FAILED" else EXIT_FAILED


def cmd_jobs_cancel(args) -> int:  # noqa: ANN001
    api = _api()
    info = api.cancel_job(_actor(api, args), args.job)
    print(f"job {info.id}: {info.status}{' (cancel requested)' if info.status == 'RUNNING' else ''}")
    return EXIT_OK


def cmd_worker(args) -> int:  # noqa: ANN001
    from dsgen_core.jobs.queue import run_worker

    api = _api()
    print(f"worker started on {api.app.settings.catalog_url.split('@')[-1]}", file=sys.stderr)
    ran = run_worker(api.app, once=args.once)
    print(f"worker stopped after {ran} job(s)", file=sys.stderr)
    return EXIT_OK


def cmd_demo(args) -> int:  # noqa: ANN001
    from dsgen_core.demo import load_demo

    api = _api()
    actor = _actor(api, args)
    return EXIT_OK if load_demo(api, actor, num_images=args.images, follow=follow_job) else EXIT_FAILED


def _streamlit_cmd(port: int, address: str) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "server.py"),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]


def cmd_serve(args, api=None) -> int:  # noqa: ANN001
    api = api or _api()
    procs = []
    if not args.no_worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "dsgen_core.cli", "worker"]))
    procs.append(subprocess.Popen(_streamlit_cmd(args.port, args.address), cwd=PROJECT_ROOT))
    first = (f"  First start: log in as 'admin' with the one-time password {api.admin_password}\n"
             "  (shown once; change it on the Account page. DSGEN_ADMIN_PASSWORD chooses it instead)\n"
             if api.admin_password else "")
    print(f"\n  dsgen is running: http://localhost:{args.port}\n{first}  data folder: {api.app.settings.home}\n"
          "  stop with Ctrl+C\n", flush=True)

    def stop(*_):  # noqa: ANN002
        for p in procs:
            p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            p.wait(timeout=10)
    return EXIT_OK


def cmd_up(args) -> int:  # noqa: ANN001
    api = _api()
    if not api.list_groups(api.default_actor):
        from dsgen_core.demo import load_demo

        load_demo(api, api.default_actor, num_images=args.images, follow=follow_job)
    return cmd_serve(args, api)  # the same facade: it holds the first start's one-time password


def cmd_report(args) -> int:  # noqa: ANN001
    """One insight table (or SQL result) of a version as CSV, like the pages' download buttons."""
    api = _api()
    out = api.write_report(_actor(api, args), args.version, Path(args.out), query=args.query or "",
                           insight=args.insight, table=args.table, compare=args.compare, sql=args.sql)
    print(f"wrote {out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dsgen", description="DatasetGenerator: import, curate and version CV datasets.")
    p.add_argument("--token", help="act with this session token (default: $DSGEN_TOKEN, then the token saved "
                   "by `dsgen login`, else as the installation's operator = first admin); an empty one is an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = sub.add_parser("import", help="import a CVAT COCO 1.0 export (zip, folder, or JSON + --images)",
                         description="Import a CVAT 'COCO 1.0' export as a new version of a dataset group.")
    imp.add_argument("path", help="zip (or .tar, .tar.gz, .tgz) as downloaded from CVAT, export folder, or "
                     "annotation .json; with a user's token it must lie in an import root open to that user")
    imp.add_argument("--group", required=True, help="dataset group name (created if new)")
    imp.add_argument("--split", default="train", help="split name (default: train)")
    imp.add_argument("--type", default="RAW", choices=["RAW", "SOURCE", "PROCESSED", "FUSION"], help="dataset type")
    imp.add_argument("--modality", default="image", help="modality (default: image)")
    imp.add_argument("--task", action="append", help="task type, repeatable (default: detection)")
    imp.add_argument("--images", help="images folder, when PATH is a .json file")
    imp.add_argument("--annotations", help="which annotation .json to use when the export has several (its name in "
                     "the export, e.g. annotations/instances_Train.json)")
    imp.add_argument("--description", help="group description (new groups)")
    imp.add_argument("--in-place", action="store_true", help="register the files where they are (NAS): copy no bytes")
    imp.add_argument("--annotations-only", action="store_true", help="import annotations without any image files")
    imp.add_argument("--check", action="store_true", help="only validate and print the report; write nothing")
    imp.add_argument("--wait", action="store_true",
                     help="follow the job to its end (runs it here if no worker is up); exit 1 if it fails")
    imp.set_defaults(func=cmd_import)

    ds = sub.add_parser("datasets", help="list, show, delete, restore dataset groups").add_subparsers(
        dest="sub", required=True)
    dl = ds.add_parser("list", help="list dataset groups")
    dl.add_argument("--json", action="store_true", help="machine-readable output")
    dl.set_defaults(func=cmd_datasets_list)
    dsh = ds.add_parser("show", help="show one group with its versions")
    dsh.add_argument("group", help="group name or id")
    dsh.add_argument("--report", action="store_true", help="print each version's validation report")
    dsh.set_defaults(func=cmd_datasets_show)

    from dsgen_core.cli_access import add_access_commands

    add_access_commands(sub, ds)

    from dsgen_core.cli_import_roots import add_import_roots_command

    add_import_roots_command(sub)

    ex = sub.add_parser("export", help="export a READY version as COCO JSON")
    ex.add_argument("version", type=int, help="version id (see `dsgen datasets show`)")
    ex.add_argument("--out", required=True, help="output .json path")
    ex.set_defaults(func=cmd_export)

    from dsgen_core.cvat_sync.cli import add_cvat_commands

    add_cvat_commands(sub)

    rp = sub.add_parser("report", help="write an insight table or a SQL result of a version as CSV",
                        description="Write one insight table (of a DSL subset, optionally compared with others) "
                                    "or one SQL result over the version as CSV (.parquet: Parquet).")
    rp.add_argument("version", type=int, help="version id (see `dsgen datasets show`)")
    rp.add_argument("--query", default="", help="DSL subset, e.g. 'split:train tag:night' (default: all images)")
    rp.add_argument("--compare", action="append", help="another DSL subset side by side (repeatable)")
    rp.add_argument("--insight", default="classes", help="classes, tags, metadata, resolution, boxes, attributes, "
                                                         "cross or issues (default: classes)")
    rp.add_argument("--table", help="which table of the insight (default: its first)")
    rp.add_argument("--sql", help="instead of an insight: a read-only SQL query over the version's tables")
    rp.add_argument("--out", required=True, help="output .csv (or .parquet) path")
    rp.set_defaults(func=cmd_report)

    jobs = sub.add_parser("jobs", help="list, follow and cancel jobs").add_subparsers(dest="sub", required=True)
    jobs.add_parser("list", help="recent jobs").set_defaults(func=cmd_jobs_list)
    js = jobs.add_parser("show", help="one job with its log")
    js.add_argument("job", type=int)
    js.add_argument("--follow", action="store_true", help="show a progress bar until it ends")
    js.set_defaults(func=cmd_jobs_show)
    jc = jobs.add_parser("cancel", help="cancel a queued or running job")
    jc.add_argument("job", type=int)
    jc.set_defaults(func=cmd_jobs_cancel)

    w = sub.add_parser("worker", help="run the job worker (claims and runs queued jobs)")
    w.add_argument("--once", action="store_true", help="exit when the queue is empty")
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="generate and import a small demo dataset")
    d.add_argument("--images", type=int, default=60, help="number of demo images (default 60)")
    d.set_defaults(func=cmd_demo)

    for name, fn, helptext in (("serve", cmd_serve, "start a worker and the web app"),
                               ("up", cmd_up, "load the demo if empty, then start worker and web app")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--port", type=int, default=int(os.environ.get("DSGEN_PORT", "8501")))
        sp.add_argument("--address", default=os.environ.get("DSGEN_ADDRESS", "0.0.0.0"))
        sp.add_argument("--no-worker", action="store_true", help="do not start a worker process")
        if name == "up":
            sp.add_argument("--images", type=int, default=60, help="demo images if the catalog is empty")
        sp.set_defaults(func=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; every way it can end is one line on stderr and an exit code, never a traceback."""
    from sqlalchemy.exc import OperationalError

    from dsgen_core.cli_exits import EXIT_PIPE, catalog_error_line, silence_stdio

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) shows up here
        return code
    except BrokenPipeError:
        silence_stdio()
        return EXIT_PIPE
    except DsgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OperationalError as exc:
        print(f"error: {catalog_error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
