"""The import service: read a file, validate it, load it in one transaction, log the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, text

from geodata.layers import Layer, get_layer
from geodata.load import load_layer
from geodata.readers import RawInput, read_input
from geodata.rosters import ROSTER_LAYERS, ReportRow, Roster, prepare_roster, write_report
from geodata.schema import ImportLog
from geodata.sheets import write_csv_rows
from geodata.validate import Validated, validate
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
    report: tuple[ReportRow, ...] = ()
    report_path: Path | None = None
    missing: tuple[str, ...] = ()
    retired: int = 0
    id_numbers: str | None = None
    dry_run: bool = False

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
    dry_run: bool = False,
    report_path: str | Path | None = None,
    retire_missing: bool = False,
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
    dry_run
        Read, resolve, validate and load in a savepoint that is rolled back: the result tells
        what an import would do (counts, rejects, the match report, missing records) and no
        record is rejected by raising. Nothing is written, not even the import log.
    report_path
        Households and members: write the address match report (one row per record) here.
    retire_missing
        Households and members of an address roster: mark the records of the roster's
        communities that the file does not hold as moved out (they are always reported).

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
        roster = Roster(raw)
        if spec.name in ROSTER_LAYERS:
            roster = prepare_roster(conn, raw, spec, settings=settings, columns=dict(columns or {}))
            raw = roster.raw
        stage("validating", len(raw.frame))
        absent = _absent_columns(spec, raw, columns or {})
        stored = _stored_codes(conn, spec, raw, columns or {}) if absent else None
        rules = spec if stored is None else relaxed(spec)
        checked = validate(raw, rules, crs=crs, max_vertices=settings.max_vertices, columns=columns)
        checked = _merge(roster, checked)
    except InputRejected as exc:
        if not dry_run:
            _log(conn, spec.name, source, 0, 0, len(exc.rejects), 0, started, created_by)
        raise
    report = None
    if report_path is not None and roster.addressed:
        report = write_report(roster.report, report_path)
    rejects = list(checked.rejects)
    noted: dict[str, Any] = {
        "report": roster.report,
        "report_path": report,
        "id_numbers": roster.id_numbers,
        "dry_run": dry_run,
    }
    if stored is not None:
        checked, new = _only_stored(checked, stored, source, absent)
        rejects = sorted([*rejects, *new], key=lambda r: (r.record or 0, r.field or ""))
    if rejects and not skip_invalid:
        if dry_run:
            return _result(spec.name, source, rejects, checked, raw.encoding, started, **noted)
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
            missing: tuple[str, ...] = ()
            retired = 0
            if not loaded.rejects or skip_invalid:
                missing, retired = _missing(conn, spec.table, checked, roster, retire_missing)
            if dry_run or (loaded.rejects and not skip_invalid):
                savepoint.rollback()
    except Forbidden:  # codes of records outside the caller's scope: nothing loaded
        if not dry_run:
            _log(conn, spec.name, source, 0, 0, len(checked.frame), 0, started, created_by)
        raise
    rejects = sorted([*rejects, *loaded.rejects], key=lambda r: (r.record or 0, r.field or ""))
    if dry_run:
        return _result(
            spec.name,
            source,
            rejects,
            checked,
            raw.encoding,
            started,
            inserted=loaded.inserted,
            updated=loaded.updated,
            missing=missing,
            **noted,
        )
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
        missing=missing,
        retired=retired,
        **noted,
    )


def _merge(roster: Roster, checked: Validated) -> Validated:
    """The roster step's rejects joined to validation's; its rejected records out of the frame.

    A record whose address matched no building is also "missing geometry" to the validator,
    and one without a found code has an empty code: those echoes are left out.
    """
    if not roster.rejects:
        return checked
    bad = roster.rejected_records
    echoes = {"code", "geometry"}
    kept = [r for r in checked.rejects if not (r.record in bad and r.field in echoes)]
    rejects = sorted([*roster.rejects, *kept], key=lambda r: (r.record or 0, r.field or ""))
    frame = checked.frame[~checked.frame["_record"].isin(bad)]
    return replace(checked, frame=frame, rejects=tuple(rejects))


def _missing(
    conn: Connection, table: str, checked: Validated, roster: Roster, retire: bool
) -> tuple[tuple[str, ...], int]:
    """Codes of the roster's communities' records the file does not hold (not yet moved out);
    with ``retire``, mark them moved out. Records in the file are moved in again."""
    if not roster.addressed or not roster.community_ids:
        return (), 0
    in_file = {str(c) for c in checked.frame["code"]}
    rows = conn.execute(
        text(f"SELECT code, moved_out_at IS NOT NULL FROM {table} WHERE community_id = ANY(:c)"),
        {"c": list(roster.community_ids)},
    ).all()
    back = [code for code, gone in rows if gone and code in in_file]
    if back:
        conn.execute(
            text(f"UPDATE {table} SET moved_out_at = NULL WHERE code = ANY(:b)"), {"b": back}
        )
    missing = sorted(code for code, gone in rows if not gone and code not in in_file)
    if not retire or not missing:
        return tuple(missing), 0
    retired = conn.execute(
        text(f"UPDATE {table} SET moved_out_at = now() WHERE code = ANY(:m)"), {"m": missing}
    ).rowcount
    return tuple(missing), retired


def _result(
    layer: str,
    source: str,
    rejects: list[Reject],
    checked: Validated,
    encoding: str | None,
    started: float,
    *,
    inserted: int = 0,
    updated: int = 0,
    missing: tuple[str, ...] = (),
    **noted: Any,
) -> ImportResult:
    """The result of a dry run: what the import would do; nothing written."""
    return ImportResult(
        layer,
        source,
        inserted,
        updated,
        tuple(rejects),
        checked.repairs,
        None,
        checked.ignored,
        checked.crs,
        encoding,
        time.perf_counter() - started,
        missing=missing,
        **noted,
    )


def relaxed(spec: Layer) -> Layer:
    """The layer's rules for updating stored records: no column or geometry is required."""
    return replace(
        spec,
        fields=tuple(replace(f, required=False) for f in spec.fields),
        parents=tuple(replace(p, required=False) for p in spec.parents),
        geometry_required=False,
        partial=True,
    )


def _absent_columns(
    spec: Layer, raw: RawInput, columns: Mapping[str, str]
) -> list[tuple[str, str]]:
    """What a new record of this file would lack: required columns, a location. Non-empty
    (with a ``code`` column) means a partial update of stored records."""
    have = set(raw.frame.columns)

    def present(name: str) -> bool:
        return name in have or columns.get(name) in have

    if not present("code"):
        return []
    missing = [(f.name, "required column missing") for f in spec.fields if f.required]
    missing += [(p.field, "required column missing") for p in spec.parents if p.required]
    missing = [(name, why) for name, why in missing if not present(name)]
    no_geometry = not raw.has_geometry or raw.frame.geometry.isna().all()
    if no_geometry and spec.geometry_required:
        missing.append(("geometry", "missing geometry"))
    elif no_geometry and spec.geometry == "Point" and not present("building_code"):
        missing.append(("geometry", "missing geometry and no building_code to place it"))
    return missing


def _stored_codes(
    conn: Connection, spec: Layer, raw: RawInput, columns: Mapping[str, str]
) -> set[str]:
    """The codes the file names that are already stored (they keep what the file leaves out)."""
    code_column = columns.get("code", "code")
    codes = sorted({str(c).strip() for c in raw.frame[code_column].dropna()})
    found = conn.execute(
        text(f"SELECT code FROM {spec.table} WHERE code = ANY(:c)"), {"c": codes}
    ).scalars()
    return set(found)


def _only_stored(
    checked: Validated, stored: set[str], source: str, missing: list[tuple[str, str]]
) -> tuple[Validated, list[Reject]]:
    """Records of a partial update whose code is not stored yet are rejected for what a new
    record needs (``missing``); the stored ones are updated."""
    frame = checked.frame
    new = ~frame["code"].astype(str).isin(stored)
    rejects = [
        Reject(source, int(rec), field, reason)
        for rec in frame.loc[new, "_record"]
        for field, reason in missing
    ]
    return replace(checked, frame=frame[~new]), rejects


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
