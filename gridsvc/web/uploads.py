"""Uploads for admins: small files import in the request, large ones as a background job.

A file up to GRIDSVC_IMPORT_INLINE_MAX_MB imports at once and the answer is its result (or 422
with every reject). A larger one is stored with a queued ``import`` job (``jobs.payload``) and
the answer points at the job; the job page shows its progress, then the same report.

The upload page asks before it commits: :func:`preview_upload` runs the import as a dry run
(counts, rejects, the address match report) and keeps the file under a random token for its
user; :func:`commit_preview` imports that file when the user confirms.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage

from gridsvc.accounts.users import User
from gridsvc.errors import Forbidden, InputRejected, NotFound, Reject
from gridsvc.portal.imports import answer, check_layer, import_path
from gridsvc.web import db

MB = 1024 * 1024
#: A preview's file waits this long for its confirmation.
PREVIEW_SECONDS = 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
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
    dry_run: bool = False,
    retire_missing: bool = False,
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
    if retire_missing:
        options["retire_missing"] = True
    if dry_run:
        return _import_now(user, upload, name, {**options, "dry_run": True}), False
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


def _previews() -> Path:
    folder = Path(tempfile.gettempdir()) / "gridsvc-previews"
    folder.mkdir(mode=0o700, exist_ok=True)
    now = time.time()
    for old in folder.iterdir():  # forget previews nobody confirmed
        if now - old.stat().st_mtime > PREVIEW_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def preview_upload(
    user: User, upload: FileStorage, *, layer: str, crs: str | None, skip_invalid: bool
) -> tuple[dict[str, Any], bool]:
    """Run the import of ``upload`` as a dry run and keep the file for :func:`commit_preview`.

    A file up to GRIDSVC_IMPORT_INLINE_MAX_MB is checked in the request; a larger one by a
    queued ``import`` job with ``dry_run`` (its page shows the same report and the same
    confirmation).

    Returns
    -------
    tuple
        The dry run's answer (:func:`gridsvc.portal.imports.answer`) with the ``token`` that
        confirms it and ``can_commit``, or the queued job's answer; and whether it was queued.

    Raises
    ------
    InputRejected
        An unknown layer, an unnamed file, or a file that cannot be read at all.
    """
    check_layer(layer)
    name = saved_name(upload)
    token = secrets.token_urlsafe(24)
    folder = _previews() / token
    folder.mkdir(mode=0o700)
    path = folder / name
    upload.save(path)
    filename = upload.filename or name
    meta = {
        "user": user.id,
        "layer": layer,
        "crs": crs,
        "skip_invalid": skip_invalid,
        "filename": filename,
        "name": name,
    }
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    if path.stat().st_size > db.settings().import_inline_max_mb * MB:
        params = {
            **{k: meta[k] for k in ("layer", "crs", "skip_invalid", "filename", "name")},
            "bytes": path.stat().st_size,
            "username": user.username,
            "dry_run": True,
            "token": token,
        }
        return _enqueue(user, params, path.read_bytes()), True
    try:
        result = import_path(
            db.conn(),
            user,
            path,
            layer=layer,
            filename=filename,
            settings=db.settings(),
            crs=crs,
            skip_invalid=skip_invalid,
            dry_run=True,
        )
    except InputRejected:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    body = answer(result, filename)
    body["token"] = token
    body["can_commit"] = not result.rejects or skip_invalid
    return body, False


def commit_preview(
    user: User, token: str, *, retire_missing: bool = False
) -> tuple[dict[str, Any], bool]:
    """Import the file a preview kept, as its user confirmed; the preview is then forgotten.

    A file above GRIDSVC_IMPORT_INLINE_MAX_MB is imported by a queued job; the answer is then
    the job's and the second value True.

    Raises
    ------
    NotFound
        No such preview for this user (expired, already imported, or another user's).
    InputRejected
        The importer's rejects (the data changed since the preview, say).
    """
    folder = _previews() / (token if _TOKEN.match(token or "") else "-")
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise NotFound("upload preview: expired or already imported; upload the file again")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta["user"] != user.id:
        raise NotFound("upload preview: expired or already imported; upload the file again")
    path = folder / meta["name"]
    if path.stat().st_size > db.settings().import_inline_max_mb * MB:
        params = {
            **{k: meta[k] for k in ("layer", "crs", "skip_invalid", "filename", "name")},
            "bytes": path.stat().st_size,
            "username": user.username,
            "retire_missing": retire_missing,
        }
        data = path.read_bytes()
        shutil.rmtree(folder, ignore_errors=True)
        return _enqueue(user, params, data), True
    try:
        result = import_path(
            db.conn(),
            user,
            path,
            layer=meta["layer"],
            filename=meta["filename"],
            settings=db.settings(),
            crs=meta["crs"],
            skip_invalid=meta["skip_invalid"],
            retire_missing=retire_missing,
        )
    except InputRejected:
        from flask import g

        g.commit_anyway = True  # keep the import_log and audit rows; the data is untouched
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return answer(result, meta["filename"]), False


def _enqueue(user: User, params: dict[str, Any], data: bytes) -> dict[str, Any]:
    from gridsvc.web.jobs_api import enqueue

    return enqueue(
        user,
        "import",
        params,
        street_id=user.street_id,
        community_id=user.community_id,
        payload=data,
    )


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
