"""Imports of uploaded files for the web service: inline in a request or as a background job.

Both ways run :func:`geodata.importer.import_file` (the CLI's checks; all or nothing unless
``skip_invalid``), write the same audit entries and answer the same JSON. A job also reports
the importer's stages as progress and keeps the full rejects CSV as its output file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from geodata.importer import ImportResult, StageHook, import_file, write_rejects
from geodata.layers import LAYERS
from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.errors import Forbidden, InputRejected, NotFound, Reject
from gridsvc.jobs import Job, Outcome, Progress, job_input
from gridsvc.settings import Settings

#: Rejects and repairs a job keeps in its result (the page's table); the CSV has them all.
SHOWN = 500
#: Progress at the start of each importer stage. Measured on households CSV and GeoJSON files of
#: 18,620 and 186,200 records: reading and validating take a quarter to a third of the time.
STAGE_SHARES = {"reading": 0.0, "validating": 0.1, "loading": 0.25, "done": 0.99}


def check_layer(name: str) -> str:
    """``name`` when it is a layer.

    Raises
    ------
    InputRejected
        Naming the known layers.
    """
    if name not in LAYERS:
        known = ", ".join(LAYERS)
        raise InputRejected(
            f"layer {name!r}: expected one of {known}",
            [Reject("upload", None, "layer", f"expected one of {known}", name[:40])],
        )
    return name


def import_path(
    conn: Connection,
    user: User,
    path: Path,
    *,
    layer: str,
    filename: str,
    settings: Settings,
    crs: str | None = None,
    skip_invalid: bool = False,
    on_stage: StageHook | None = None,
    job_id: int | None = None,
    dry_run: bool = False,
    retire_missing: bool = False,
) -> ImportResult:
    """Import the saved upload ``path`` into ``layer`` in the caller's transaction; audit it.

    Parameters
    ----------
    filename
        The name the user gave the file (audit entries).
    job_id
        The background job doing it, noted in the audit entry.
    dry_run
        Only tell what the import would do (counts, rejects, the address match report): nothing
        is written and nothing audited.
    retire_missing
        Mark the households/members of an address roster's communities that the file no longer
        holds as moved out.

    Raises
    ------
    InputRejected
        Every reject, after the ``import_rejected`` audit entry (the caller commits it: the
        data is untouched).
    """
    target = f"{layer} {filename}"
    noted = {} if job_id is None else {"job": job_id}
    try:
        result = import_file(
            conn,
            layer,
            path,
            settings=settings,
            crs=crs,
            skip_invalid=skip_invalid,
            created_by=user.username,
            on_stage=on_stage,
            dry_run=dry_run,
            retire_missing=retire_missing,
        )
    except (InputRejected, Forbidden) as exc:
        if dry_run:
            raise
        details = {"rejects": len(getattr(exc, "rejects", ())), **noted}
        audit.record(conn, "import_rejected", user=user, target=target, details=details)
        raise
    if dry_run:
        return result
    details = {"inserted": result.inserted, "updated": result.updated, **noted}
    if result.retired:
        details["retired"] = result.retired
    audit.record(conn, "import", user=user, target=target, details=details)
    return result


def answer(result: ImportResult, filename: str) -> dict[str, Any]:
    """The JSON answer of an import."""
    return {
        "layer": result.layer,
        "source": filename,
        "inserted": result.inserted,
        "updated": result.updated,
        "rejected": len(result.rejects),
        "repaired": len(result.repairs),
        "rejects": [r.to_dict() for r in result.rejects],
        "repairs": [r.to_dict() for r in result.repairs],
        "ignored_columns": list(result.ignored_columns),
        "crs": result.crs,
        "seconds": round(result.seconds, 3),
        "dry_run": result.dry_run,
        "report": [
            {**row.to_dict(), "why": row.why, "args": dict(row.args)}
            for row in result.report[:SHOWN]
        ],
        "matched": sum(1 for row in result.report if row.building_code),
        "missing": len(result.missing),
        "retired": result.retired,
        "id_numbers": result.id_numbers,
    }


def import_job(conn: Connection, job: Job, *, settings: Settings, progress: Progress) -> Outcome:
    """Run a queued import (the ``import`` job handler): its stages as progress, its rejects as
    the job's output file. A rejected file fails the job with every reject in its result."""
    params = job.params
    if job.user is None:
        raise NotFound(f"job {job.id}: the user who uploaded the file no longer exists")
    with tempfile.TemporaryDirectory(prefix="gridsvc-import-") as folder:
        path = Path(folder) / params["name"]
        path.write_bytes(job_input(conn, job.id))
        try:
            done = import_path(
                conn,
                job.user,
                path,
                layer=params["layer"],
                filename=params["filename"],
                settings=settings,
                crs=params.get("crs"),
                skip_invalid=bool(params.get("skip_invalid")),
                on_stage=_stage_progress(progress),
                job_id=job.id,
                dry_run=bool(params.get("dry_run")),
                retire_missing=bool(params.get("retire_missing")),
            )
        except InputRejected as exc:
            rejects = exc.rejects
            result = {
                "layer": params["layer"],
                "source": params["filename"],
                "inserted": 0,
                "updated": 0,
                "rejected": len(rejects),
                "rejects": [r.to_dict() for r in rejects[:SHOWN]],
            }
            return Outcome(result, error=exc.message, output=_csv(rejects, Path(folder)))
        output = done.rejects_path.read_bytes() if done.rejects_path else None
        if done.dry_run and done.rejects:
            output = _csv(done.rejects, Path(folder))
    body = answer(done, params["filename"])
    if params.get("dry_run"):  # a preview: the upload page's token confirms it
        body["token"] = params.get("token")
        body["can_commit"] = not done.rejects or bool(params.get("skip_invalid"))
    return Outcome(
        {**body, "rejects": body["rejects"][:SHOWN], "repairs": body["repairs"][:SHOWN]},
        output=output,
    )


def _csv(rejects: list[Reject] | tuple[Reject, ...], folder: Path) -> bytes:
    """The rejects as the CLI writes them (UTF-8 with BOM)."""
    return write_rejects(rejects, folder / "rejects.csv").read_bytes()


def _stage_progress(progress: Progress) -> StageHook:
    def report(stage: str, records: int | None) -> None:
        counted = "" if records is None else f": {records:,} records"
        progress(STAGE_SHARES.get(stage, 0.0), f"{stage}{counted}")

    return report
