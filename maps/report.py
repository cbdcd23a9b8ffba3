"""Self-contained HTML reports: the coverage map and beside it the tables a street office reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import folium
import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from maps.chart import load_histogram_svg
from maps.coverage_map import MapData, MapOptions, build_map, format_figure
from maps.labels import column_label, kind_label, label
from maps.offline import inline_assets
from maps.safe import PLACE_KINDS, SENSITIVE_FLAGS, finalize, protect

TEMPLATES = Path(__file__).with_name("templates")
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    finalize=finalize,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ROWS_MAX = 200  # rows of one blind-spot list printed in a report
BLINDSPOT_COLUMNS = ("rank", "code", "name", "community_code", "building_code", "reason")
FULL_DETAIL_COLUMNS = ("phone", *SENSITIVE_FLAGS)


@dataclass(frozen=True)
class ReportSection:
    """One more titled table of a report (after the built-in sections), e.g. 联系情况.

    ``table`` columns are labelled through :func:`maps.labels.column_label`; ``note`` is printed
    under the title; ``people`` masks ``name``/``phone`` columns in a masked report.
    """

    key: str
    title: str
    table: pd.DataFrame | None = None
    note: str = ""
    people: bool = False
    #: Instead of a table: a whole fragment (its own heading) whose builder escaped every value.
    html: str = ""


@dataclass(frozen=True)
class ReportData:
    """What a report shows besides the map.

    Attributes
    ----------
    title
        The area's name (street or community).
    scope
        Its code.
    map
        The map layers (see :class:`maps.coverage_map.MapData`); ``map.summary`` is also the
        report's summary table.
    communities, grids
        Coverage per community / grid: any columns; ``code``, ``name``, counts and shares are
        labelled and formatted.
    loads
        Households per member, one value per eligible member (0 for reserve members).
    load_range
        The allowed households per member ``(min, max)``.
    loads_outside
        When members' ranges differ (own, community or street settings): the active members
        below and above their own range, as coverage counts them; the load table then reports
        these instead of comparing every load with ``load_range``.
    distances
        Metres of every member–household pair.
    far_m
        A pair longer than this is far.
    blindspots
        Kind → table with ``rank`` and ``reason`` (geometry columns are dropped).
    stations
        Red Station reach: ``code``, ``name`` and households within each ring.
    generated_at, generated_by, plan_version
        When, by whom and from which pairing plan.
    extra_sections
        HTML fragments appended to the tables (built and escaped by their own modules).
    """

    title: str
    scope: str
    map: MapData
    communities: pd.DataFrame | None = None
    grids: pd.DataFrame | None = None
    loads: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    load_range: tuple[int, int] = (15, 25)
    loads_outside: tuple[int, int] | None = None
    distances: np.ndarray = field(default_factory=lambda: np.zeros(0))
    far_m: float = 500.0
    blindspots: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    stations: pd.DataFrame | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    generated_by: str = ""
    plan_version: str | int | None = None
    sections: tuple[ReportSection, ...] = ()


def map_html(m: folium.Map) -> str:
    """A map as a standalone page with every asset inlined (opens with no network)."""
    return inline_assets(m.get_root().render())


def map_parts(m: folium.Map) -> tuple[str, str, str]:
    """The rendered ``(header, body, script)`` of a map's page, assets inlined in the header."""
    figure = m.get_root()
    for child in list(figure._children.values()):
        child.render()
    return (
        inline_assets(figure.header.render()),
        figure.html.render(),
        figure.script.render(),
    )


def render_report(data: ReportData, options: MapOptions | None = None) -> str:
    """Render a self-contained report page.

    Parameters
    ----------
    data
        The map layers and tables.
    options
        Map options; ``options.masked`` (default ``True``) also masks names and phones in the
        tables and leaves sensitive household flags out.

    Returns
    -------
    str
        One HTML document: every script, style and image inlined, every value escaped.
    """
    opts = options or MapOptions()
    lang = opts.lang
    header, body, script = map_parts(build_map(data.map, replace(opts, compact=True)))
    t = _Labels(lang)
    low, high = data.load_range
    page = _ENV.get_template("report.html.j2").render(
        lang=lang,
        title=f"{data.title} {t.report_title}",
        scope=f"{data.title}（{data.scope}）" if lang == "zh" else f"{data.title} ({data.scope})",
        generated_at=data.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        generated_by=data.generated_by or "–",
        plan_version="–" if data.plan_version is None else str(data.plan_version),
        masked=opts.masked,
        privacy_note=t.masked_note if opts.masked else t.unmasked_note,
        t=t,
        map_header=header,
        map_body=body,
        map_script=script,
        summary=_pairs_table(
            [(column_label(k, lang), format_figure(k, v)) for k, v in data.map.summary.items()],
            lang,
        ),
        communities=_frame_table(data.communities, lang),
        grids=_frame_table(data.grids, lang),
        load_chart=load_histogram_svg(
            data.loads,
            low=low,
            high=high,
            x_label=t.load_axis,
            y_label=t.members_axis,
            band_label=f"{t.range_band} {low}–{high}",
        ),
        load_table=_pairs_table(
            _load_rows(data.loads, low, high, lang, outside=data.loads_outside), lang
        ),
        distances=_pairs_table(_distance_rows(data.distances, data.far_m, lang), lang),
        blindspots=[
            _blindspot_section(kind, frame, lang=lang, masked=opts.masked)
            for kind, frame in data.blindspots.items()
        ],
        stations=_frame_table(data.stations, lang),
        sections=[
            _extra_section(section, lang=lang, masked=opts.masked) for section in data.sections
        ],
    )
    return page


def write_report(path: Path, data: ReportData, options: MapOptions | None = None) -> int:
    """Render a report to ``path``; returns its size in bytes."""
    html = render_report(data, options)
    Path(path).write_text(html, encoding="utf-8")
    return len(html.encode("utf-8"))


class _Labels:
    """``t.key`` / ``t("key")`` label lookup for templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getattr__(self, key: str) -> str:
        return label(key, self.lang)

    def __call__(self, key: str, **fmt: object) -> str:
        return label(key, self.lang, **fmt)


def _cell(value: Any, column: str = "") -> dict[str, Any]:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return {"text": "–", "num": True}
    if isinstance(value, bool | np.bool_):
        return {"text": "✓" if value else "", "num": False}
    if isinstance(value, int | float | np.integer | np.floating):
        return {
            "text": format_figure(column, value.item() if isinstance(value, np.generic) else value),
            "num": True,
        }
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {"text": "–", "num": False}
    if isinstance(value, list | tuple | np.ndarray):
        return {"text": "、".join(map(str, value)), "num": False}
    return {"text": str(value), "num": False}


def _frame_table(
    frame: pd.DataFrame | None, lang: str, *, limit: int | None = None
) -> dict[str, Any] | None:
    if frame is None or not len(frame):
        return None
    frame = pd.DataFrame(frame).drop(columns=["geometry"], errors="ignore")
    frame = frame[[c for c in frame.columns if not str(c).startswith("_")]]
    shown = frame if limit is None else frame.head(limit)
    rows = [
        [_cell(v, str(c)) for c, v in zip(shown.columns, row, strict=True)]
        for row in shown.itertuples(index=False, name=None)
    ]
    more = len(frame) - len(shown)
    return {
        "head": [column_label(str(c), lang) for c in frame.columns],
        "rows": rows,
        "more": label("more_rows", lang, n=f"{more:,}") if more > 0 else "",
    }


def _pairs_table(rows: list[tuple[str, str]], lang: str) -> dict[str, Any]:
    return {
        "head": [label("figure", lang), label("value", lang)],
        "rows": [[{"text": k, "num": False}, {"text": v, "num": True}] for k, v in rows],
        "more": "",
    }


def _load_rows(
    loads: np.ndarray,
    low: int,
    high: int,
    lang: str,
    *,
    outside: tuple[int, int] | None = None,
) -> list[tuple[str, str]]:
    values = np.asarray(loads, dtype=int)
    active = values[values > 0]
    en = lang == "en"
    if outside is None:
        below, above = int((active < low).sum()), int((active > high).sum())
        names = (
            (f"< {low}", f"{low}–{high}", f"> {high}")
            if en
            else (f"少于{low}户", f"{low}–{high}户", f"多于{high}户")
        )
    else:
        below, above = outside
        names = tuple(label(k, lang) for k in ("below_own", "within_own", "above_own"))
    rows = [
        (label("members_active", lang), f"{active.size:,}"),
        (label("members_reserve", lang), f"{int((values == 0).sum()):,}"),
        (names[0], f"{below:,}"),
        (names[1], f"{active.size - below - above:,}"),
        (names[2], f"{above:,}"),
    ]
    if active.size:
        rows.append(("median" if en else "中位数", f"{np.median(active):.1f}"))
    return rows


def _distance_rows(distances: np.ndarray, far_m: float, lang: str) -> list[tuple[str, str]]:
    d = np.asarray(distances, dtype=float)
    d = d[np.isfinite(d)]
    if not d.size:
        return [(label("none", lang), "–")]
    return [
        (label("households_paired", lang), f"{d.size:,}"),
        (label("distance_mean_m", lang), format_figure("distance_mean_m", float(d.mean()))),
        (label("median_distance_m", lang), format_figure("median", float(np.median(d)))),
        (label("distance_p95_m", lang), format_figure("p95", float(np.percentile(d, 95)))),
        (label("max_distance_m", lang), format_figure("max", float(d.max()))),
        (f"{label('far_pairs', lang)} (> {far_m:,.0f} m)", f"{int((d > far_m).sum()):,}"),
    ]


def _blindspot_section(
    kind: str, frame: pd.DataFrame, *, lang: str, masked: bool
) -> dict[str, Any]:
    if "rank" in frame:
        frame = frame.sort_values("rank", kind="stable")
    wanted = BLINDSPOT_COLUMNS if masked else BLINDSPOT_COLUMNS + FULL_DETAIL_COLUMNS
    frame = pd.DataFrame(frame)[[c for c in wanted if c in frame.columns]]
    safe = protect(frame, masked=masked, people=kind not in PLACE_KINDS)
    return {
        "title": kind_label(kind, lang),
        "count": f"{len(frame):,}",
        "table": _frame_table(safe, lang, limit=ROWS_MAX) or {"head": [], "rows": [], "more": ""},
    }


def _extra_section(section: ReportSection, *, lang: str, masked: bool) -> dict[str, Any]:
    if section.html:
        return {"key": section.key, "html": Markup(section.html)}
    frame = protect(pd.DataFrame(section.table), masked=masked, people=section.people)
    return {
        "key": section.key,
        "html": "",
        "title": section.title,
        "note": section.note,
        "table": _frame_table(frame, lang, limit=ROWS_MAX),
    }
