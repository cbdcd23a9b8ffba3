"""Uploads for admins: the file goes to the importer; its rejects come back as the answer."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from geodata.importer import import_file
from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.errors import InputRejected, Reject
from gridsvc.web import db


def run_upload(
    conn: Connection,
    user: User,
    upload: FileStorage,
    *,
    layer: str,
    crs: str | None = None,
    skip_invalid: bool = False,
) -> dict[str, Any]:
    """Import one uploaded file in the request's transaction (all or nothing).

    Raises
    ------
    InputRejected
        The importer's rejects (every record, field and reason), or an unnamed file.
    """
    name = secure_filename(upload.filename or "")
    suffix = Path(upload.filename or "").suffix.lower()
    if not name or not suffix:
        raise InputRejected(
            "upload: the file needs a name with an extension (.geojson, .gpkg, .zip, .csv, .xlsx)",
            [Reject("upload", None, "file", "no file name or extension", upload.filename)],
        )
    with tempfile.TemporaryDirectory(prefix="gridsvc-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        upload.save(path)
        try:
            result = import_file(
                conn,
                layer,
                path,
                settings=db.settings(),
                crs=crs,
                skip_invalid=skip_invalid,
                created_by=user.username,
            )
        except InputRejected as exc:
            audit.record(
                conn,
                "import_rejected",
                user=user,
                target=f"{layer} {upload.filename}",
                details={"rejects": len(exc.rejects)},
            )
            from flask import g

            g.commit_anyway = True  # keep the import_log and audit rows; the data is untouched
            raise
    audit.record(
        conn,
        "import",
        user=user,
        target=f"{layer} {upload.filename}",
        details={"inserted": result.inserted, "updated": result.updated},
    )
    return {
        "layer": result.layer,
        "source": upload.filename,
        "inserted": result.inserted,
        "updated": result.updated,
        "rejects": [r.to_dict() for r in result.rejects],
        "repairs": [r.to_dict() for r in result.repairs],
        "ignored_columns": list(result.ignored_columns),
        "crs": result.crs,
        "seconds": round(result.seconds, 3),
    }
