"""Server-rendered pages (Chinese by default): thin views over the same services as the API."""

from __future__ import annotations

from typing import Any

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
from gridsvc.errors import Conflict, GridsvcError, InputRejected, Reject
from gridsvc.pairing import service as pairing
from gridsvc.portal import roster as roster_service
from gridsvc.portal.proposals import load_proposal, render_diff_map
from gridsvc.portal.search import record_details, search_codes
from gridsvc.web import db, schemas
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


def _chosen_community(communities: list[dict[str, Any]]) -> str | None:
    wanted = request.values.get("community")
    if wanted and not schemas.COMMUNITY.regex.match(wanted):
        raise InputRejected(f"community {wanted!r}: expected a 12-digit code", [])
    return wanted or (communities[0]["code"] if communities else None)


@bp.route("/lang/<string:code>")
def lang(code: str) -> Response:
    """Switch the page language (zh or en)."""
    if code in ("zh", "en"):
        session["lang"] = code
    return redirect(request.referrer or url_for("pages.home"))


@bp.route("/")
def home() -> Any:
    """The user's street or community with its coverage figures (members and cadres: their
    phone pages)."""
    if current_user().is_person:
        return redirect(url_for("mobile.households"))
    report = compute_coverage(db.conn(), settings=db.settings())
    body = report.to_dict()
    return render_template("home.html", report=body, summary=body["summary"])


@bp.route("/map")
def map_page() -> str:
    """The coverage map with layer toggles, a code search and links to details."""
    communities = _communities()
    community = _chosen_community(communities)
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise InputRejected(
            f"query parameter 'q': at most {MAX_QUERY} characters, got {len(query):,d}",
            [Reject("query", None, "q", f"longer than {MAX_QUERY} characters")],
        )
    results = search_codes(db.conn(), query) if query else []
    return render_template(
        "map.html", communities=communities, community=community, q=query, results=results
    )


@bp.route("/map/frame")
def map_frame() -> Response:
    """The folium map page itself (every asset inlined: no CDN)."""
    from gridsvc.web.i18n import lang as current_lang
    from gridsvc.web.reports import render_scope_map

    communities = _communities()
    community = _chosen_community(communities)
    html = render_scope_map(
        db.conn(), community_code=community, settings=db.settings(), lang=current_lang()
    )
    return Response(nonce_scripts(html), mimetype="text/html")


@bp.route("/records/<string:kind>/<string:code>")
def record(kind: str, code: str) -> str:
    """Details of a household, member or building (masked)."""
    return render_template("record.html", item=record_details(db.conn(), kind, code))


@bp.route("/roster")
def roster() -> str:
    """结对名单 of a community, filterable by grid, with XLSX and CSV export links."""
    communities = _communities()
    community = _chosen_community(communities)
    grid = request.args.get("grid") or None
    if grid and not schemas.GRID.regex.match(grid):
        raise InputRejected(f"grid {grid!r}: expected a 15-digit code", [])
    ids = (
        []
        if community is None
        else [
            db.conn().scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": community})
        ]
    )
    data = roster_service.load_roster(db.conn(), [i for i in ids if i], grid_code=grid)
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
    return render_template(
        "roster.html",
        communities=communities,
        community=community,
        grid=grid,
        grids=grids,
        roster=data.to_dict(limit=500),
    )


@bp.route("/blindspots", methods=["GET", "POST"])
def blindspots() -> Any:
    """Blind spots with counts and lists; station suggestions (planners, POST): a radius that
    is not a number of metres within the API's bounds answers 422 with the page and why."""
    communities = _communities()
    community = _chosen_community(communities)
    spots = find_blindspots(db.conn(), community_code=community, settings=db.settings())
    sites, problem = None, None
    if request.method == "POST":
        user = current_user()
        require(user, plan=True)
        try:
            radius = _radius(request.form.get("radius_m", "500"))
        except InputRejected:
            problem = request.form.get("radius_m", "")[:40]
    if request.method == "POST" and problem is None:
        run = suggest_sites(
            db.conn(),
            community_code=community,
            radius_m=radius,
            k=3,
            time_limit=20.0,
            created_by=user.username,
            settings=db.settings(),
        )
        sites = run.to_dict()
    return render_template(
        "blindspots.html",
        communities=communities,
        community=community,
        spots=spots.to_dict(limit=50),
        sites=sites,
        radius_m=RADIUS_M,
        problem=problem,
    ), (200 if problem is None else 422)


def _radius(text: str) -> float:
    """The form's ``radius_m``, in the API's bounds (metres).

    Raises
    ------
    InputRejected
        Naming the field and the bounds, for text that is not a number or lies outside them.
    """
    low, high = RADIUS_M
    try:
        radius = float(text)
    except ValueError:
        radius = float("nan")
    if not low <= radius <= high:  # NaN fails too
        reason = f"expected a number of metres from {low:g} to {high:g}"
        raise InputRejected(
            f"form field 'radius_m': {reason}, got {text[:40]!r}",
            [Reject("form", None, "radius_m", reason, text[:40])],
        )
    return radius


@bp.route("/rebalance", methods=["GET", "POST"])
def rebalance() -> Any:
    """The planner's rebalance: run a proposal, review its diff (map and table), decide."""
    user = current_user()
    require(user, plan=True)
    communities = _communities()
    community = _chosen_community(communities)
    shown = request.args.get("proposal", type=int)
    message, status = None, 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "propose":
                made = _propose(user, community)
                return redirect(url_for(".rebalance", community=community, proposal=made), 303)
            if action not in ("accept", "reject"):
                raise InputRejected(f"action {action!r}: expected propose, accept or reject", [])
            shown = request.form.get("proposal_id", type=int)
            message = _decide(user, shown, action)
        except Conflict as exc:
            message, status = f"{t('stale')} ({exc.message})", 409
        except GridsvcError as exc:
            message, status = exc.message, exc.http_status
    proposal = load_proposal(db.conn(), shown) if shown else None
    return render_template(
        "rebalance.html",
        communities=communities,
        community=proposal["community"] if proposal else community,
        proposal=proposal,
        message=message,
        failed=status >= 400,
    ), status


def _propose(user: Any, community: str | None) -> int:
    if community is None:
        raise InputRejected("rebalance: no community in your scope", [])
    made = pairing.propose_rebalance(
        db.conn(), community_code=community, settings=db.settings(), created_by=user.username
    )
    audit.record(
        db.conn(),
        "proposal",
        user=user,
        target=f"proposal {made.id}",
        community_id=made.community_id,
        details={"community": community, "base_version": made.base_version, **made.counts},
    )
    return made.id


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
            reason=reason,
        )
        message = f"{t('accepted')} {outcome.version}"
    else:
        outcome = pairing.reject_proposal(
            db.conn(), proposal_id, decided_by=user.username, reason=reason
        )
        message = t("rejected")
    audit.record(
        db.conn(),
        f"proposal_{action}",
        user=user,
        target=f"proposal {proposal_id}",
        reason=reason,
        before=outcome.before,
        after=outcome.after,
        community_id=outcome.community_id,
    )
    return message


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
    return render_template(
        "upload.html",
        layers=list(LAYER_SPECS),
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
def job(job_id: int) -> str:
    """A background job's progress (the page polls the API), then an import's report."""
    from gridsvc import jobs

    status = jobs.job_status(db.conn(), job_id, user=current_user())
    return render_template("job.html", job=status)


def init_app(app: Flask) -> None:
    """Register the pages and the user in every template."""
    app.register_blueprint(bp)
    app.context_processor(lambda: {"user": g.get("user"), "layers": LAYERS})
