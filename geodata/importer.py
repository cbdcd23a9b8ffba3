"""The import service: read a file, validate it, load it in one transaction, log the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, insert

from geodata.layers import get_layer
from geodata.load import load_layer
from geodata.readers import read_input
from geodata.schema import ImportLog
from geodata.sheets import write_csv_rows
from geodata.validate import validate
from gridsvc.errors import Forbidden, InputRejected, Reject
from gridsvc.settings import Settings

#: ``on_stage(stage, records)``: the import reached ``stage`` (``reading``, ``validating``,
#: ``loading``, ``done``); ``records`` is what that stage works on (None while reading; records
#: loaded when done).
StageHook = Callable[[str, int | None], None]


@dataclass(frozen=True)
class ImportResult:
    """What one import did."""

    layer: str
    source: str
    inserted: int
    updated: int
    rejects: tuple[Reject, ...] = ()
    repairs: tuple[Reject, ...] = ()
    rejects_path: Path | None = None
    ignored_columns: tuple[str, ...] = ()
    crs: str | None = None
    encoding: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def loaded(self) -> int:
        """Records inserted or updated."""
        return self.inserted + self.updated


def default_rejects_path(path: str | Path) -> Path:
    """Where ``--skip-invalid`` writes rejects by default: ``<file>.rejects.csv`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".rejects.csv")


def write_rejects(rejects: list[Reject] | tuple[Reject, ...], path: str | Path) -> Path:
    """Write rejects as CSV (UTF-8 with BOM so Excel shows Chinese; formula-like values
    neutralised, :mod:`geodata.sheets`); return the path."""
    fields = ["source", "record", "field", "reason", "value"]
    return write_csv_rows((r.to_dict() for r in rejects), fields, path)


def import_file(
    conn: Connection,
    layer: str,
    path: str | Path,
    *,
    settings: Settings,
    crs: str | None = None,
    encoding: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    progress: bool = False,
    created_by: str | None = None,
    on_stage: StageHook | None = None,
) -> ImportResult:
    """Import ``path`` into ``layer``: all-or-nothing unless ``skip_invalid``.

    The load runs in a savepoint of the caller's transaction, so a rejected file leaves the
    data exactly as it was; the ``import_log`` row is written either way (the caller commits).

    Parameters
    ----------
    conn
        A connection in a transaction; the caller commits.
    layer
        Target layer name (:data:`geodata.layers.LAYERS`).
    path
        The input file (GeoJSON, GeoPackage, zipped Shapefile, CSV, XLSX).
    settings
        Caps: ``max_vertices``, ``max_nesting``, ``max_import_mb``.
    crs
        ``--crs``: any EPSG code, ``gcj02`` or ``bd09``; overrides the file's CRS.
    encoding
        Text encoding of a CSV or Shapefile; default detected.
    skip_invalid
        Load the valid records and write the rejects to ``rejects_path``.
    rejects_path
        Where to write rejects (default :func:`default_rejects_path`).
    columns
        Header mapping ``{field: column in the file}``, e.g. ``{"code": "id"}``.
    progress
        Show a progress bar while loading.
    created_by
        Who ran the import, for the log.
    on_stage
        Called as each stage begins and when the load is done (:data:`StageHook`): for a
        background job's progress. Nothing is called after a rejection.

    Raises
    ------
    InputRejected
        Any reject without ``skip_invalid`` (every reject listed), or a file that cannot be
        read at all. Nothing is loaded then.
    """
    started = time.perf_counter()
    spec = get_layer(layer)
    source = Path(path).name
    stage = on_stage or _no_stage
    try:
        stage("reading", None)
        raw = read_input(
            path,
            max_nesting=settings.max_nesting,
            max_vertices=settings.max_vertices,
            max_mb=settings.max_import_mb,
            encoding=encoding,
            layer=spec.name,
            max_unzipped_mb=settings.max_unzipped_mb,
            max_zip_ratio=settings.max_zip_ratio,
        )
        stage("validating", len(raw.frame))
        checked = validate(raw, spec, crs=crs, max_vertices=settings.max_vertices, columns=columns)
    except InputRejected as exc:
        _log(conn, spec.name, source, 0, 0, len(exc.rejects), 0, started, created_by)
        raise
    rejects = list(checked.rejects)
    if rejects and not skip_invalid:
        _reject(conn, spec.name, source, rejects, len(checked.repairs), started, created_by)
    stage("loading", len(checked.frame))
    try:
        with conn.begin_nested() as savepoint:
            loaded = load_layer(
                conn,
                spec.name,
                checked.frame,
                source=source,
                skip_invalid=skip_invalid,
                progress=progress,
            )
            if loaded.rejects and not skip_invalid:
                savepoint.rollback()
    except Forbidden:  # codes of records outside the caller's scope: nothing loaded
        _log(conn, spec.name, source, 0, 0, len(checked.frame), 0, started, created_by)
        raise
    rejects = sorted([*rejects, *loaded.rejects], key=lambda r: (r.record or 0, r.field or ""))
    if loaded.rejects and not skip_invalid:
        _reject(conn, spec.name, source, rejects, len(checked.repairs), started, created_by)
    written = None
    if rejects:
        written = write_rejects(rejects, rejects_path or default_rejects_path(path))
    _log(
        conn,
        spec.name,
        source,
        loaded.inserted,
        loaded.updated,
        len(rejects),
        len(checked.repairs),
        started,
        created_by,
    )
    stage("done", loaded.loaded)
    return ImportResult(
        spec.name,
        source,
        loaded.inserted,
        loaded.updated,
        tuple(rejects),
        checked.repairs,
        written,
        checked.ignored,
        checked.crs,
        raw.encoding,
        time.perf_counter() - started,
    )


def _no_stage(stage: str, records: int | None) -> None:
    """The default :data:`StageHook`: nothing to report."""


def _reject(
    conn: Connection,
    layer: str,
    source: str,
    rejects: list[Reject],
    repaired: int,
    started: float,
    created_by: str | None,
) -> None:
    _log(conn, layer, source, 0, 0, len(rejects), repaired, started, created_by)
    noun = "record" if len({r.record for r in rejects}) == 1 else "records"
    count = len({r.record for r in rejects})
    raise InputRejected(
        f"{source}: {count} {noun} rejected, nothing imported "
        "(fix them, or use --skip-invalid to import the rest)",
        rejects,
    )


def _log(
    conn: Connection,
    layer: str,
    source: str,
    inserted: int,
    updated: int,
    rejected: int,
    repaired: int,
    started: float,
    created_by: str | None,
) -> None:
    conn.execute(
        insert(ImportLog).values(
            layer=layer,
            source=source,
            inserted=inserted,
            updated=updated,
            rejected=rejected,
            repaired=repaired,
            seconds=time.perf_counter() - started,
            created_by=created_by,
        )
    )
