"""Uploads for admins: small files import in the request, large ones as a background job.

A file up to GRIDSVC_IMPORT_INLINE_MAX_MB imports at once and the answer is its result (or 422
with every reject). A larger one is stored with a queued ``import`` job (``jobs.payload``) and
the answer points at the job; the job page shows its progress, then the same report.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage

from gridsvc.accounts.users import User
from gridsvc.errors import Forbidden, InputRejected, Reject
from gridsvc.portal.imports import answer, check_layer, import_path
from gridsvc.web import db

MB = 1024 * 1024
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def saved_name(upload: FileStorage) -> str:
    """The upload's own name as a file name in a folder of ours: no folders, no control or
    reserved characters, at most 60 characters, its extension kept (the importer reads by it).
    Chinese names stay as they are: rejects and the import log name the user's file.

    Raises
    ------
    InputRejected
        When the upload has no name or no extension.
    """
    given = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", given).strip(" .")[-60:]
    suffix = Path(name).suffix.lower()
    if not name or not suffix:
        raise InputRejected(
            "upload: the file needs a name with an extension (.geojson, .gpkg, .zip, .csv, .xlsx)",
            [Reject("upload", None, "file", "no file name or extension", upload.filename)],
        )
    return name


def upload_size(upload: FileStorage) -> int:
    """The upload's size in bytes (the stream is left at its start)."""
    stream = upload.stream
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def take_upload(
    user: User,
    upload: FileStorage,
    *,
    layer: str,
    crs: str | None = None,
    skip_invalid: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Import a small upload in the request's transaction, or queue a large one as a job.

    Returns
    -------
    tuple
        The answer (the import's counts and rejects, or the queued job's ``id`` and ``url``)
        and whether the upload was queued.

    Raises
    ------
    InputRejected
        An unknown layer or an unnamed file; for an inline import, the importer's rejects
        (every record, field and reason).
    """
    check_layer(layer)
    name = saved_name(upload)
    options = {"layer": layer, "crs": crs, "skip_invalid": skip_invalid}
    if upload_size(upload) > db.settings().import_inline_max_mb * MB:
        return _queue(user, upload, name, options), True
    return _import_now(user, upload, name, options), False


def _import_now(
    user: User, upload: FileStorage, name: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Import in the request's transaction, all or nothing unless ``skip_invalid``."""
    filename = upload.filename or name
    with tempfile.TemporaryDirectory(prefix="gridsvc-upload-") as folder:
        path = Path(folder) / name
        upload.save(path)
        try:
            result = import_path(
                db.conn(), user, path, filename=filename, settings=db.settings(), **options
            )
        except (InputRejected, Forbidden):
            from flask import g

            g.commit_anyway = True  # keep the import_log and audit rows; the data is untouched
            raise
    return answer(result, filename)


def _queue(user: User, upload: FileStorage, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Store the upload with a queued ``import`` job (scoped as its user); the 202 answer."""
    from gridsvc.web.jobs_api import enqueue

    data = upload.stream.read()
    params = {
        **options,
        "filename": upload.filename or name,
        "name": name,
        "bytes": len(data),
        "username": user.username,
    }
    return enqueue(
        user,
        "import",
        params,
        street_id=user.street_id,
        community_id=user.community_id,
        payload=data,
    )
