"""The JSON/GeoJSON API (flask-smorest: arguments validated, OpenAPI at /api/openapi.json)."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

from flask import Flask, Response, request
from flask_smorest import Api, Blueprint
from sqlalchemy import text

from gridsvc.accounts import audit
from gridsvc.accounts.users import User, require
from gridsvc.coverage import compute_coverage, find_blindspots, suggest_sites
from gridsvc.errors import Forbidden
from gridsvc.portal import roster as roster_service
from gridsvc.portal.geojson import coverage_geojson, coverage_key
from gridsvc.portal.search import record_details, search_codes
from gridsvc.web import db, schemas
from gridsvc.web.auth import current_user

bp = Blueprint("api", __name__, url_prefix="/api", description="gridsvc JSON and GeoJSON API")
bp.ARGUMENTS_PARSER = schemas.StrictParser()
_GEOJSON_CACHE: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_CACHE_LOCK = Lock()
CACHE_ENTRIES = 64
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def scope_codes(args: dict[str, Any]) -> dict[str, str | None]:
    """``street_code``/``community_code`` keywords from the request (one at most)."""
    if args.get("street") and args.get("community"):
        from gridsvc.errors import InputRejected, Reject

        raise InputRejected(
            "give street or community, not both",
            [Reject("query", None, "community", "not together with street")],
        )
    return {"street_code": args.get("street"), "community_code": args.get("community")}


def scope_community_ids(args: dict[str, Any]) -> list[int]:
    """Ids of the visible communities the request names (all visible ones by default)."""
    from gridsvc.coverage._data import resolve_scope

    scope = resolve_scope(db.conn(), **scope_codes(args))
    return scope.community_ids.tolist()


def allow_unmasked(user: User, wanted: bool, what: str, target: str | None) -> bool:
    """Planners and admins may see names and phones in clear; each time is audited."""
    if not wanted:
        return False
    if not user.can_plan:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not see unmasked data")
    audit.record(db.conn(), what, user=user, target=target, ip=request.remote_addr)
    return True


@bp.route("/me")
@bp.response(200)
def me() -> dict[str, Any]:
    """The caller: name, role and scope."""
    return current_user().to_dict()


@bp.route("/communities")
@bp.response(200)
def communities() -> dict[str, Any]:
    """The streets and communities the caller may see."""
    rows = db.conn().execute(
        text(
            "SELECT c.code, c.name, s.code AS street_code, s.name AS street_name "
            "FROM communities c JOIN streets s ON s.id = c.street_id ORDER BY c.code"
        )
    )
    return {"communities": [dict(r._mapping) for r in rows]}


@bp.route("/coverage")
@bp.arguments(schemas.ScopeArgs, location="query")
@bp.response(200)
def coverage(args: dict[str, Any]) -> dict[str, Any]:
    """Coverage figures of a street, a community or the caller's scope, at every level."""
    report = compute_coverage(db.conn(), **scope_codes(args), settings=db.settings())
    return report.to_dict()


@bp.route("/coverage.geojson")
@bp.arguments(schemas.CommunityArgs, location="query")
@bp.response(200, content_type="application/geo+json")
def coverage_geojson_view(args: dict[str, Any]) -> Response:
    """Grids and buildings of a community with household and pair counts (GeoJSON).

    Cached per community and data version; answers 304 to a matching If-None-Match.
    """
    connection = db.conn()
    key = coverage_key(connection, args["community"])  # also the scope check (row-level security)
    with _CACHE_LOCK:
        body = _GEOJSON_CACHE.get(key)
        if body is not None:
            _GEOJSON_CACHE.move_to_end(key)
    if body is None:
        body = coverage_geojson(connection, key[0])
        with _CACHE_LOCK:
            _GEOJSON_CACHE[key] = body
            while len(_GEOJSON_CACHE) > CACHE_ENTRIES:
                _GEOJSON_CACHE.popitem(last=False)
    response = Response(body, mimetype="application/geo+json")
    response.set_etag(f"{key[0]}-{key[1]}")
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.route("/overview.geojson")
@bp.arguments(schemas.OverviewArgs, location="query")
@bp.response(200, content_type="application/geo+json")
def overview(args: dict[str, Any]) -> Response:
    """Communities and grids of a street, or of everything the caller sees (the district for an
    unscoped admin), shaded by coverage: aggregated GeoJSON, no personal data.

    Cached per scope and data version; answers 304 to a matching If-None-Match.
    """
    from gridsvc.portal import overview as service
    from gridsvc.portal._sql import data_version

    user = current_user()
    connection = db.conn()
    street = service.street_id(connection, args.get("street"))  # the scope check (RLS)
    version = data_version(connection)
    key = ("overview", street, user.street_id, user.community_id, version)
    with _CACHE_LOCK:
        body = _GEOJSON_CACHE.get(key)
    if body is None:
        tolerance = 0.00002 if street is not None or user.street_id else 0.0001
        body = service.overview_geojson(connection, street=street, tolerance_deg=tolerance)
        with _CACHE_LOCK:
            _GEOJSON_CACHE[key] = body
            while len(_GEOJSON_CACHE) > CACHE_ENTRIES:
                _GEOJSON_CACHE.popitem(last=False)
    response = Response(body, mimetype="application/geo+json")
    response.set_etag(f"o-{street}-{user.street_id}-{user.community_id}-{version}")
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.route("/households.geojson")
@bp.arguments(schemas.BoxArgs, location="query")
@bp.response(200, content_type="application/geo+json")
def households_in_box(args: dict[str, Any]) -> Response:
    """Household points (code, paired) in a small box the caller sees: the map draws them only
    when zoomed in. At most 5,000; ``truncated`` says when there were more."""
    from gridsvc.portal.overview import households_geojson

    body = households_geojson(db.conn(), tuple(args["bbox"]))  # type: ignore[arg-type]
    return Response(body, mimetype="application/geo+json")


@bp.route("/blindspots")
@bp.arguments(schemas.BlindspotArgs, location="query")
@bp.response(200)
def blindspots(args: dict[str, Any]) -> dict[str, Any]:
    """Blind spots per kind: counts and the ranked lists (first ``limit`` of each kind)."""
    spots = find_blindspots(
        db.conn(), **scope_codes(args), kinds=args.get("kind"), settings=db.settings()
    )
    return spots.to_dict(limit=args["limit"])


@bp.route("/stations/suggestions", methods=["POST"])
@bp.arguments(schemas.SitesArgs)
@bp.response(200)
def station_suggestions(args: dict[str, Any]) -> dict[str, Any]:
    """Suggest where new Red Stations would reach the most households (planners; stored)."""
    user = current_user()
    require(user, plan=True)
    run = suggest_sites(
        db.conn(),
        community_code=args["community"],
        radius_m=args["radius_m"],
        k=args["k"],
        time_limit=20.0,
        created_by=user.username,
        settings=db.settings(),
    )
    return run.to_dict()


@bp.route("/search")
@bp.arguments(schemas.SearchArgs, location="query")
@bp.response(200)
def search(args: dict[str, Any]) -> dict[str, Any]:
    """Households, members and buildings by any part of a code, buildings by name or number,
    people by name for planners (names masked)."""
    by_name = current_user().can_plan
    return {"results": search_codes(db.conn(), args["q"], by_name=by_name)}


@bp.route("/records/<string:kind>/<string:code>")
@bp.arguments(schemas.DetailArgs, location="query")
@bp.response(200)
def record(args: dict[str, Any], kind: str, code: str) -> dict[str, Any]:
    """One household, member or building with its pairs."""
    user = current_user()
    found = record_details(db.conn(), kind, code)  # 404 before any audit entry
    if allow_unmasked(user, args["unmasked"], "view_unmasked", f"{kind} {code}"):
        found = record_details(db.conn(), kind, code, unmasked=True)
    return found


def _roster(args: dict[str, Any], what: str) -> roster_service.Roster:
    user = current_user()
    ids = scope_community_ids(args)
    target = args.get("community") or args.get("street") or user.scope_code or "all"
    if args["unmasked"] and not user.can_plan:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not see unmasked data")
    return roster_service.load_roster(
        db.conn(),
        ids,
        grid_code=args.get("grid"),
        masked=not args["unmasked"],
        audit_as=(user, what, f"roster {target}", request.remote_addr),
    )


@bp.route("/roster")
@bp.arguments(schemas.RosterArgs, location="query")
@bp.response(200)
def roster(args: dict[str, Any]) -> dict[str, Any]:
    """结对名单: members with their households, cadres with their members (masked by default)."""
    return _roster(args, "view_unmasked").to_dict(limit=args["limit"])


@bp.route("/roster.xlsx")
@bp.arguments(schemas.RosterArgs, location="query")
@bp.response(200, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
def roster_xlsx(args: dict[str, Any]) -> Response:
    """The roster as a workbook of two sheets."""
    from gridsvc.web.i18n import t

    data = _roster(args, "export_unmasked")
    body = roster_service.roster_xlsx(
        _for_people(data), sheet_names=(t("member_households"), t("cadre_members"))
    )
    return _download(body, export_name("roster", args, data.masked, "xlsx"), XLSX)


def _for_people(data: roster_service.Roster) -> roster_service.Roster:
    """Headers and yes/no in the caller's language (the catalogue's ``column.*``)."""
    from gridsvc.web.i18n import label_of, t

    return data.labelled(lambda c: label_of("column", c), t("yes"), t("no"))


def export_name(what: str, args: dict[str, Any], masked: bool, ext: str) -> str:
    """``roster-530102001001-20261207-masked.xlsx``: what, scope, local date, masking."""
    from datetime import datetime

    user = current_user()
    scope = args.get("community") or args.get("street") or user.scope_code or "all"
    day = datetime.now(db.settings().zone).strftime("%Y%m%d")
    return f"{what}-{scope}-{day}-{'masked' if masked else 'unmasked'}.{ext}"


@bp.route("/roster.csv")
@bp.arguments(schemas.CsvArgs, location="query")
@bp.response(200, content_type="text/csv")
def roster_csv(args: dict[str, Any]) -> Response:
    """One roster table as CSV (UTF-8 with BOM)."""
    data = _roster(args, "export_unmasked")
    body = roster_service.roster_csv(_for_people(data), table=args["table"])
    name = export_name(f"roster-{args['table']}", args, data.masked, "csv")
    return _download(body, name, "text/csv; charset=utf-8")


def _download(body: bytes, name: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/report")
@bp.arguments(schemas.ReportArgs, location="query")
@bp.response(200, content_type="text/html")
def report(args: dict[str, Any]) -> Response:
    """The self-contained HTML report of a street or community: the document ``gridsvc report``
    writes (one builder), masked unless ``unmasked`` (planners and admins; audited).

    Without a scope: the caller's street or community, or the only street the caller sees.
    """
    from gridsvc.web.i18n import lang as current_lang
    from gridsvc.web.reports import render_scope_report

    user = current_user()
    codes = report_scope(args, user)
    if args["unmasked"] and not user.can_plan:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not see unmasked data")
    body, name = render_scope_report(
        db.conn(),
        **codes,
        settings=db.settings(),
        lang=args.get("lang") or current_lang(),
        user=user,
        unmasked=args["unmasked"],
    )
    return _download(body.encode(), name, "text/html; charset=utf-8")


def report_scope(args: dict[str, Any], user: User) -> dict[str, str | None]:
    """The report's scope: as asked, else the caller's own, else the one street visible."""
    from gridsvc.errors import InputRejected, Reject

    codes = scope_codes(args)
    if codes["street_code"] or codes["community_code"]:
        return codes
    if user.community_code:
        return {"street_code": None, "community_code": user.community_code}
    if user.street_code:
        return {"street_code": user.street_code, "community_code": None}
    streets = db.conn().execute(text("SELECT code FROM streets ORDER BY code LIMIT 2")).scalars()
    found = list(streets)
    if len(found) == 1:
        return {"street_code": found[0], "community_code": None}
    raise InputRejected(
        "report: give street or community (you see more than one street)",
        [Reject("query", None, "street", "a 9-digit street code or a 12-digit community")],
    )


@bp.route("/imports", methods=["POST"])
@bp.arguments(schemas.ImportArgs, location="form")
@bp.arguments(schemas.ImportFile, location="files")
@bp.response(200)
@bp.alt_response(202, description="Queued as a background import job: poll its ``url``.")
@bp.doc(requestBody={"required": True, "content": {"multipart/form-data": schemas.IMPORT_FORM}})
def upload(args: dict[str, Any], files: dict[str, Any]) -> dict[str, Any] | tuple[dict, int]:
    """Import a file into a layer (admins).

    Files up to GRIDSVC_IMPORT_INLINE_MAX_MB import at once: 200 with the counts, or 422 listing
    every reject. Larger ones are queued: 202 with the job's ``id`` and ``url``; the finished
    job's result holds the counts and rejects, ``/api/jobs/<id>/rejects.csv`` all the rejects.
    """
    from gridsvc.web import uploads

    user = current_user()
    require(user, admin=True)
    body, queued = uploads.take_upload(user, files["file"], **args)
    return (body, 202) if queued else body


def init_app(app: Flask) -> None:
    """Register the API and its OpenAPI document."""
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    api = GridsvcApi(app)
    from gridsvc.web import contacts_api, jobs_api, requests_api, users_api

    api.register_blueprint(bp)
    api.register_blueprint(jobs_api.bp)
    api.register_blueprint(users_api.bp)
    api.register_blueprint(contacts_api.bp)
    api.register_blueprint(requests_api.bp)
    _one_scope_in_bodies(api)
    _record_kinds(api)
    app.extensions["gridsvc.api"] = api


def _record_kinds(api: Api) -> None:
    """``/api/records/{kind}/{code}``: the route takes any text (an unknown kind answers 422
    naming it); the document lists the kinds."""
    item = api.spec._paths.get("/api/records/{kind}/{code}", {})  # registered paths
    for parameter in item.get("parameters", []):
        if parameter.get("name") == "kind":
            parameter["schema"] = dict(schemas.RECORD_KIND["schema"])


class GridsvcApi(Api):
    """flask-smorest's Api documenting the error body the app really answers
    (``{"error", "message", "details"}``, :mod:`gridsvc.web.errors`)."""

    ERROR_SCHEMA = schemas.ErrorBody


def _one_scope_in_bodies(api: Api) -> None:
    """JSON bodies with ``street`` and ``community`` say in the schema that not both are given
    (query parameters can only say it in words: :data:`schemas.ONE_SCOPE`), and a new user
    that only an admin may be unscoped."""
    for schema in api.spec.components.schemas.values():
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        if {"street", "community"} <= set(properties):
            schema["not"] = {"required": ["street", "community"]}
        if "role" in properties and "street" in properties:  # NewUser: only an admin unscoped
            schema["anyOf"] = [
                {"properties": {"role": {"enum": ["admin"]}}},
                {"required": ["street"]},
                {"required": ["community"]},
            ]


def clear_cache() -> None:
    """Forget cached GeoJSON (tests)."""
    with _CACHE_LOCK:
        _GEOJSON_CACHE.clear()
