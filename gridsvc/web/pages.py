"""Server-rendered pages (Chinese by default): thin views over the same services as the API."""

from __future__ import annotations

from typing import Any

import pandas as pd
from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import text

from gridsvc.accounts import audit
from gridsvc.accounts.users import require
from gridsvc.coverage import compute_coverage, find_blindspots, suggest_sites
from gridsvc.errors import Conflict, GridsvcError, InputRejected, NotFound, Reject
from gridsvc.pairing import service as pairing
from gridsvc.portal import roster as roster_service
from gridsvc.portal.proposals import load_proposal, render_diff_map
from gridsvc.portal.search import record_details, search_codes
from gridsvc.web import cache, db, schemas
from gridsvc.web.auth import current_user
from gridsvc.web.hardening import nonce_scripts
from gridsvc.web.i18n import t

bp = Blueprint("pages", __name__)
#: Longest code search on the map page (the API's ``/api/search`` allows the same).
MAX_QUERY = 64
#: Bounds of a station suggestion's radius, as the API's (``schemas.SiteArgs``).
RADIUS_M = (50.0, 3000.0)
LAYERS = (
    "streets",
    "communities",
    "grids",
    "buildings",
    "households",
    "members",
    "cadres",
    "stations",
)


def _communities() -> list[dict[str, Any]]:
    rows = db.conn().execute(
        text(
            "SELECT c.code, c.name, s.code AS street_code FROM communities c "
            "JOIN streets s ON s.id = c.street_id ORDER BY c.code"
        )
    )
    return [dict(r._mapping) for r in rows]


def _chosen_community(
    communities: list[dict[str, Any]], *, default: str | None = None
) -> str | None:
    """The community the request names (404 when it is not one the caller sees: one answer
    for "no such code" and "outside your scope"), else the first visible one."""
    wanted = request.values.get("community") or default
    if wanted and not schemas.COMMUNITY.regex.match(wanted):
        raise InputRejected(f"community {wanted!r}: expected a 12-digit code", [])
    if wanted and wanted not in {c["code"] for c in communities}:
        raise NotFound(f"community {wanted!r}: no such community in your scope")
    return wanted or (communities[0]["code"] if communities else None)


@bp.route("/lang/<string:code>")
def lang(code: str) -> Response:
    """Switch the page language (zh or en)."""
    if code in ("zh", "en"):
        session["lang"] = code
    return redirect(request.referrer or url_for("pages.home"))


@bp.route("/")
def home() -> Any:
    """The user's street or community, titled with its name, with its coverage figures
    (members and cadres: their phone pages)."""
    from gridsvc.web.api import report_scope

    if current_user().is_person:
        return redirect(url_for("mobile.households"))

    try:
        codes = report_scope({}, current_user())
    except InputRejected:  # an admin who sees several streets: the whole district
        codes = {"street_code": None, "community_code": None}
    body = cache.scoped(
        "coverage",
        codes["street_code"],
        codes["community_code"],
        build=lambda: compute_coverage(db.conn(), **codes, settings=db.settings()).to_dict(),
    )
    return render_template("home.html", report=body, summary=body["summary"], codes=codes)


@bp.route("/map")
def map_page() -> str:
    """The coverage map with layer toggles and a search; a result opens on the map, zoomed in
    and highlighted (``focus=kind:code``)."""
    communities = _communities()
    focus = _focus(request.args.get("focus"))
    community = _chosen_community(communities, default=focus and focus["community_code"])
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise InputRejected(
            f"query parameter 'q': at most {MAX_QUERY} characters, got {len(query):,d}",
            [Reject("query", None, "q", f"longer than {MAX_QUERY} characters")],
        )
    by_name = current_user().can_plan
    results = search_codes(db.conn(), query, by_name=by_name) if query else []
    if len(results) == 1 and not focus:  # one hit: straight to it
        hit = results[0]
        return redirect(  # type: ignore[return-value]
            url_for(
                ".map_page", community=hit["community_code"], focus=f"{hit['kind']}:{hit['code']}"
            )
        )
    return render_template(
        "map.html",
        communities=communities,
        community=community,
        q=query,
        results=results,
        focus=focus,
    )


def _focus(raw: str | None) -> dict[str, Any] | None:
    """``household:CODE`` (or member/building) → the record's place (404 outside the scope)."""
    if not raw:
        return None
    kind, _, code = raw.partition(":")
    found = record_details(db.conn(), kind, code)
    return {
        "kind": kind,
        "code": code,
        "community_code": found.get("community_code"),
        "lat": found["lat"],
        "lon": found["lon"],
        "label": found.get("name") or code,
    }


@bp.route("/map/frame")
def map_frame() -> Response:
    """The folium map page itself (every asset inlined: no CDN), opened on ``focus`` if given."""
    from gridsvc.web.reports import render_scope_map

    communities = _communities()
    focus = _focus(request.args.get("focus"))
    community = _chosen_community(communities, default=focus and focus["community_code"])
    html = cache.scoped(
        "map",
        community,
        None if focus is None else (focus["kind"], focus["code"]),
        build=lambda: render_scope_map(
            db.conn(), community_code=community, settings=db.settings(), focus=focus
        ),
    )
    return Response(nonce_scripts(html), mimetype="text/html")


@bp.route("/overview")
def overview() -> str:
    """The street map (street users) or the district overview (admins): communities and grids
    shaded by coverage, households when zoomed in."""
    streets = db.conn().execute(text("SELECT code, name FROM streets ORDER BY code")).all()
    wanted = request.args.get("street") or None
    if wanted and wanted not in {s.code for s in streets}:
        raise NotFound(f"street {wanted!r}: no such street in your scope")
    if wanted is None and len(streets) == 1:
        wanted = streets[0].code
    return render_template("overview.html", streets=streets, street=wanted)


@bp.route("/overview/frame")
def overview_frame() -> Response:
    """The overview map page itself (assets inlined; the data comes from the API)."""
    from maps.overview_map import OverviewOptions, build_overview
    from maps.report import map_html

    street = request.args.get("street") or None
    if street and not schemas.STREET.regex.match(street):
        raise InputRejected(f"street {street!r}: expected a 9-digit code", [])
    settings = db.settings()
    options = OverviewOptions(
        areas_url=url_for("api.overview", street=street),
        points_url=url_for("api.households_in_box"),
        lang=settings.lang,
        tiles=settings.tiles,
        tianditu_key=settings.tianditu_key,
    )
    return Response(map_html(build_overview(options)), mimetype="text/html")


@bp.route("/records/<string:kind>/<string:code>")
def record(kind: str, code: str) -> str:
    """Details of a household, member or building (masked)."""
    return render_template("record.html", item=record_details(db.conn(), kind, code))


ROSTER_PAGE = 100  # rows of each roster table on one page


@bp.route("/roster")
def roster() -> str:
    """结对名单 of a community, filterable by grid, paged (the totals shown), with exports."""
    communities = _communities()
    community = _chosen_community(communities)
    grid = request.args.get("grid") or None
    if grid and not schemas.GRID.regex.match(grid):
        raise InputRejected(f"grid {grid!r}: expected a 15-digit code", [])
    page = max(1, request.args.get("page", 1, type=int) or 1)
    ids = (
        []
        if community is None
        else [
            db.conn().scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": community})
        ]
    )
    data = cache.scoped(
        "roster",
        community,
        grid,
        build=lambda: roster_service.load_roster(db.conn(), [i for i in ids if i], grid_code=grid),
    )
    grids = (
        db.conn()
        .execute(
            text(
                "SELECT g.code FROM grids g JOIN communities c ON c.id = g.community_id "
                "WHERE c.code = :c ORDER BY g.code"
            ),
            {"c": community},
        )
        .scalars()
        .all()
    )
    body = data.to_dict(limit=ROSTER_PAGE, offset=(page - 1) * ROSTER_PAGE)
    most = max(body["totals"]["household_pairs"], body["totals"]["member_pairs"])  # type: ignore[index]
    return render_template(
        "roster.html",
        communities=communities,
        community=community,
        grid=grid,
        grids=grids,
        roster=body,
        page=page,
        pages=max(1, -(-most // ROSTER_PAGE)),
        per_page=ROSTER_PAGE,
    )


SITE_RADII = (300, 500, 800, 1000)  # GB 50180-2018 walking life circles, metres


@bp.route("/blindspots", methods=["GET", "POST"])
def blindspots() -> Any:
    """Blind spots with counts and lists; station suggestions (planners, POST: k new sites
    within a walking radius; the answer redirects to the stored run, shown on a map)."""
    communities = _communities()
    community = _chosen_community(communities)
    if request.method == "POST":
        user = current_user()
        require(user, plan=True)
        radius = _form_choice("radius_m", SITE_RADII)
        k = _form_choice("k", range(1, 11))
        run = suggest_sites(
            db.conn(),
            community_code=community or "",
            radius_m=float(radius),
            k=k,
            time_limit=20.0,
            created_by=user.username,
            settings=db.settings(),
        )
        return redirect(url_for(".blindspots", community=community, sites=run.run_id), 303)
    spots = cache.scoped(
        "blindspots",
        community,
        build=lambda: find_blindspots(
            db.conn(), community_code=community, settings=db.settings()
        ).to_dict(limit=50),
    )
    run_id = request.args.get("sites", type=int)
    sites = _site_rows(run_id) if run_id else None
    return render_template(
        "blindspots.html",
        communities=communities,
        community=community,
        spots=spots,
        sites=sites,
        run_id=run_id,
        radii=SITE_RADII,
        chosen={"k": request.args.get("k", 3, type=int), "radius_m": 500},
    )


def _form_choice(name: str, allowed: Any) -> int:
    """The form's whole-number field ``name``, one of ``allowed``; 422 naming it otherwise."""
    text_value = request.form.get(name, "")[:40]
    value = request.form.get(name, type=int)
    if value not in allowed:
        choices = ", ".join(str(v) for v in allowed)
        reason = f"expected one of {choices}"
        raise InputRejected(
            f"form field {name!r}: {reason}, got {text_value!r}",
            [Reject("form", None, name, reason, text_value)],
        )
    return int(value)


def _site_rows(run_id: int) -> dict[str, Any]:
    """A stored suggestion run's sites (404 outside the caller's scope)."""
    from gridsvc.coverage.sites import load_suggestions

    sites = load_suggestions(db.conn(), run_id)
    rows = pd.DataFrame(sites.drop(columns="geometry"))
    rows["lon"], rows["lat"] = sites.geometry.x.round(6), sites.geometry.y.round(6)
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    radius = int(rows["radius_m"].iloc[0]) if len(rows) else None
    return {"sites": records, "radius_m": radius, "total": int(rows["new_households"].sum())}


@bp.route("/blindspots/sites/<int:run_id>/map")
def sites_map(run_id: int) -> Response:
    """The suggested sites on the community's map, each with the households it would add."""
    from gridsvc.web.reports import render_sites_map

    html = render_sites_map(db.conn(), run_id, settings=db.settings())
    return Response(html, mimetype="text/html")


@bp.route("/rebalance", methods=["GET", "POST"])
def rebalance() -> Any:
    """The planner's rebalance: run a proposal (a background job with progress), review its
    diff (map and table), decide. Every POST answers with a redirect (post/redirect/get); the
    outcome is shown once on the page it leads to."""
    user = current_user()
    require(user, plan=True)
    communities = _communities()
    community = _chosen_community(communities)
    shown = request.args.get("proposal", type=int)
    message, status = session.pop("rebalance_message", None), 200
    failed = bool(session.pop("rebalance_failed", False))
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "propose":
                return _propose(user, community)
            if action not in ("accept", "reject"):
                raise InputRejected(f"action {action!r}: expected propose, accept or reject", [])
            shown = request.form.get("proposal_id", type=int)
            session["rebalance_message"] = _decide(user, shown, action)
            target = url_for(".rebalance", community=community, proposal=shown)
            return redirect(target, 303)
        except Conflict as exc:
            message, status, failed = f"{t('stale')} ({exc.message})", 409, True
        except GridsvcError as exc:
            message, status, failed = exc.message, exc.http_status, True
    proposal = load_proposal(db.conn(), shown) if shown else None
    return render_template(
        "rebalance.html",
        communities=communities,
        community=proposal["community"] if proposal else community,
        proposal=proposal,
        proposals=[] if proposal else pairing.open_proposals(db.conn()),
        message=message,
        failed=failed,
    ), status


def _propose(user: Any, community: str | None) -> Response:
    """An open proposal of this plan and data version, else a rebalance job (its page shows
    the progress and leads to the proposal); without a job queue, solved here."""
    from flask import current_app

    if community is None:
        raise InputRejected("rebalance: no community in your scope", [])
    cid = db.conn().scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": community})
    if cid is None:
        raise NotFound(f"community {community!r}: no such community in your scope")
    found = pairing.reusable_proposal(db.conn(), community_code=community)
    if found is None and not current_app.config.get("GRIDSVC_NO_QUEUE"):
        from gridsvc.web.jobs_api import enqueue

        params = {"community": community, "username": user.username}
        body = enqueue(user, "rebalance", params, community_id=int(cid))
        return redirect(url_for(".job", job_id=body["id"]), 303)
    if found is None:
        found = pairing.propose_rebalance(
            db.conn(),
            community_code=community,
            settings=db.settings(),
            created_by=user.username,
            actor_id=user.id,
        )
    return redirect(url_for(".rebalance", community=community, proposal=found.id), 303)


def _decide(user: Any, proposal_id: int | None, action: str) -> str:
    if proposal_id is None:
        raise InputRejected("proposal_id: expected a proposal number", [])
    reason = request.form.get("reason", "")[:500]
    if action == "accept":
        outcome = pairing.accept_proposal(
            db.conn(),
            proposal_id,
            expected_version=request.form.get("version", type=int),
            decided_by=user.username,
            actor_id=user.id,
            reason=reason,
        )
        return f"{t('accepted')} {outcome.version}"
    pairing.reject_proposal(
        db.conn(), proposal_id, decided_by=user.username, actor_id=user.id, reason=reason
    )
    return t("rejected")


@bp.route("/rebalance/<int:proposal_id>/map")
def proposal_map(proposal_id: int) -> Response:
    """The diff map of a proposal (every asset inlined: no CDN; every value escaped)."""
    from gridsvc.web.i18n import lang as current_lang

    html = render_diff_map(db.conn(), proposal_id, settings=db.settings(), lang=current_lang())
    return Response(nonce_scripts(html), mimetype="text/html")


@bp.route("/upload", methods=["GET", "POST"])
def upload() -> Any:
    """Data upload for admins: the importer's result or its rejects; a large file goes to the
    job queue and the browser to the job's page."""
    from geodata.layers import LAYERS as LAYER_SPECS

    user = current_user()
    require(user, admin=True)
    result = rejected = preview = None
    status = 200
    if request.method == "POST":
        from gridsvc.web import uploads

        try:
            if request.form.get("action") == "commit":
                result, queued = uploads.commit_preview(
                    user,
                    request.form.get("token", ""),
                    retire_missing=request.form.get("retire_missing") == "on",
                )
                if queued:
                    return redirect(url_for(".job", job_id=result["id"]), 303)
            else:
                preview, queued_job = _preview_or_queue(user, uploads)
                if queued_job is not None:
                    return redirect(url_for(".job", job_id=queued_job), 303)
        except InputRejected as exc:
            rejected, status = exc, 422
    settings = db.settings()
    chosen = {  # the form keeps what was chosen
        "layer": request.form.get("layer", ""),
        "crs": request.form.get("crs", ""),
        "skip_invalid": request.form.get("skip_invalid") == "on",
    }
    return render_template(
        "upload.html",
        layers=list(LAYER_SPECS),
        chosen=chosen,
        result=result,
        preview=preview,
        rejected=rejected,
        limit=int(settings.max_upload_mb),
        inline_mb=settings.import_inline_max_mb,
    ), status


def _preview_or_queue(user: Any, uploads: Any) -> tuple[dict[str, Any] | None, int | None]:
    """A file's dry run to confirm (a larger one: the queued job doing it, by its id)."""
    file = request.files.get("file")
    if file is None or not file.filename:
        raise InputRejected("upload: no file given", [])
    options = {
        "layer": request.form.get("layer", ""),
        "crs": request.form.get("crs") or None,
        "skip_invalid": request.form.get("skip_invalid") == "on",
    }
    body, queued = uploads.preview_upload(user, file, **options)
    return (None, body["id"]) if queued else (body, None)


@bp.route("/audit")
def audit_page() -> str:
    """The audit log (admins)."""
    require(current_user(), admin=True)
    return render_template("audit.html", entries=audit.list_entries(db.conn(), limit=300))


@bp.route("/jobs/<int:job_id>")
def job(job_id: int) -> Any:
    """A background job's progress (the page polls the API), then an import's report."""
    from gridsvc import jobs

    status = jobs.job_status(db.conn(), job_id, user=current_user())
    made = (status.get("result") or {}).get("proposal_id")
    if status["kind"] == "rebalance" and status["status"] == "done" and made:
        community = status["result"].get("community")
        return redirect(url_for(".rebalance", community=community, proposal=made), 303)
    return render_template("job.html", job=status)


def init_app(app: Flask) -> None:
    """Register the pages and the user in every template."""
    app.register_blueprint(bp)
    app.context_processor(lambda: {"user": g.get("user"), "layers": LAYERS})
