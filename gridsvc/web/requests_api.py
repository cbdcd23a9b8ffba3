"""API of residents' requests and micro-wishes (row-level security scopes every read).

Acting on a request or a wish needs If-Match with the version seen (its ETag): of two people
acting at once exactly one wins, the other gets 409.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, current_app, request
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gridsvc.errors import InputRejected, Reject
from gridsvc.requests import service, wishes
from gridsvc.web import db, schemas
from gridsvc.web.auth import current_user
from gridsvc.web.schemas import COMMUNITY, STREET, Schema, _OneScope

bp = Blueprint(
    "requests", __name__, url_prefix="/api", description="Residents' requests, micro-wishes"
)
bp.ARGUMENTS_PARSER = schemas.StrictParser()
CODE = schemas.RECORD_CODE
#: Keys and Chinese labels: the document lists every accepted value.
CATEGORY = validate.OneOf([*service.CATEGORIES, *service.CATEGORIES.values()])
CHANNEL = validate.OneOf([*service.CHANNELS, *service.CHANNELS.values()])
STATUS = validate.OneOf([*service.STATE_LABELS, *service.STATE_LABELS.values()])
FLAG = validate.OneOf([*wishes.FLAGS, *wishes.FLAGS.values()])
WISH_STATUS = validate.OneOf([*wishes.STATE_LABELS, *wishes.STATE_LABELS.values()])
ID = validate.Range(min=1, max=2**62)

IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": r'^(W/)?("[0-9]{1,9}"|[0-9]{1,9})$'},
    "example": '"2"',
    "description": 'The version you saw (the ETag, quoted: "2"). 428 without it, 422 when '
    "malformed, 409 when someone acted first.",
}


class NewRequest(Schema):
    """A request of a household (category and channel: key or Chinese label)."""

    household = fields.String(required=True, validate=CODE)
    category = fields.String(required=True, validate=CATEGORY)
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    channel = fields.String(load_default=None, allow_none=True, validate=CHANNEL)
    at = fields.String(load_default=None, allow_none=True, validate=schemas.WHEN)


class RequestQuery(_OneScope, Schema):
    """Filters and paging of the request list."""

    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)
    status = fields.String(validate=STATUS)
    member = fields.String(validate=CODE)
    overdue = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class RequestAction(Schema):
    """An action: accept, decline (note: the reason), start, finish (note: what was done),
    visit (satisfaction 1-5, note: the resident's words), escalate."""

    action = fields.String(
        required=True,
        validate=validate.OneOf(["accept", "decline", "start", "finish", "visit", "escalate"]),
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    satisfaction = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=5)
    )


class DispatchArgs(_OneScope, Schema):
    """The street or community whose waiting requests to dispatch (default: your scope)."""

    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)


class NewWish(Schema):
    """A micro-wish of a needy household."""

    household = fields.String(required=True, validate=CODE)
    flag = fields.String(required=True, validate=FLAG)
    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    value_yuan = fields.Float(required=True, validate=validate.Range(min=0, max=100000))
    wanted_by = fields.Date(required=True)


class WishQuery(_OneScope, Schema):
    """Filters and paging of the wish board."""

    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)
    status = fields.String(validate=WISH_STATUS)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class WishAction(Schema):
    """claim (a member, or a unit's name after GRIDSVC_WISH_OPEN_DAYS), release, done (note),
    feedback (note: the household's words)."""

    action = fields.String(
        required=True, validate=validate.OneOf(["claim", "release", "done", "feedback"])
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    member = fields.String(load_default=None, allow_none=True, validate=CODE)
    unit = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100)
    )


def _json(body: dict[str, Any], *, status: int = 200) -> Response:
    response = current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )
    if "version" in body:
        response.set_etag(str(body["version"]))
    return response


def _seen_version() -> int:
    raw = request.headers.get("If-Match", "")
    if not raw.strip():
        abort(428, description="send If-Match with the version (ETag) you saw")
    tags = list(request.if_match.as_set(include_weak=True))
    if len(tags) != 1 or not re.fullmatch(r"[0-9]{1,9}", str(tags[0] or "")):
        raise InputRejected(
            'header If-Match: expected one version such as "2"',
            [Reject("header", None, "If-Match", "expected one quoted version", raw[:40])],
        )
    return int(tags[0])


@bp.route("/requests", methods=["POST"])
@bp.arguments(NewRequest)
@bp.response(201)
def add_request(args: dict[str, Any]) -> Response:
    """Create a request and dispatch it at once: the member it went to and why (``reason``)."""
    body = service.add_request(
        db.conn(),
        current_user(),
        settings=db.settings(),
        household=args["household"],
        category=args["category"],
        text_=args["text"],
        channel=args["channel"],
        at=args["at"],
        ip=request.remote_addr,
    )
    return _json(body, status=201)


@bp.route("/requests")
@bp.arguments(RequestQuery, location="query")
@bp.response(200)
def requests_list(args: dict[str, Any]) -> dict[str, Any]:
    """Requests of your scope, newest first (a member: their orders and their households')."""
    return service.list_requests(
        db.conn(),
        settings=db.settings(),
        street_code=args.get("street"),
        community_code=args.get("community"),
        status=args.get("status"),
        member=args.get("member"),
        overdue=args["overdue"],
        limit=args["limit"],
        offset=args["offset"],
    )


@bp.route("/requests/<int:request_id>")
@bp.response(200)
def request_one(request_id: int) -> Response:
    """One request with its whole history (events); the ETag is its version."""
    return _json(service.get_request(db.conn(), request_id, settings=db.settings()))


@bp.route("/requests/<int:request_id>/actions", methods=["POST"])
@bp.arguments(RequestAction)
@bp.doc(parameters=[IF_MATCH])
@bp.response(200)
def request_action(args: dict[str, Any], request_id: int) -> Response:
    """Accept, decline (dispatched again at once), start, finish, visit or escalate."""
    body = service.act(
        db.conn(),
        current_user(),
        request_id,
        args["action"],
        settings=db.settings(),
        version=_seen_version(),
        note=args["note"],
        satisfaction=args["satisfaction"],
        ip=request.remote_addr,
    )
    return _json(body)


@bp.route("/requests/dispatch", methods=["POST"])
@bp.arguments(DispatchArgs, required=False)
@bp.response(200)
def dispatch(args: dict[str, Any]) -> dict[str, Any]:
    """Dispatch every waiting request of a street or community as one min-cost flow (planners)."""
    user = current_user()
    if not user.can_plan:
        from gridsvc.errors import Forbidden

        raise Forbidden(f"user {user.username!r} (role {user.role}) may not dispatch")
    return service.dispatch_requests(
        db.conn(),
        user,
        settings=db.settings(),
        street_code=args.get("street"),
        community_code=args.get("community"),
    )


@bp.route("/wishes", methods=["POST"])
@bp.arguments(NewWish)
@bp.response(201)
def add_wish(args: dict[str, Any]) -> Response:
    """Publish a micro-wish to the members of the household's community (planners)."""
    body = wishes.add_wish(
        db.conn(),
        current_user(),
        settings=db.settings(),
        household=args["household"],
        flag=args["flag"],
        text_=args["text"],
        value_yuan=args["value_yuan"],
        wanted_by=args["wanted_by"],
        ip=request.remote_addr,
    )
    return _json(body, status=201)


@bp.route("/wishes")
@bp.arguments(WishQuery, location="query")
@bp.response(200)
def wishes_list(args: dict[str, Any]) -> dict[str, Any]:
    """The wish board of your scope (no household code, name or phone), open ones first."""
    return wishes.list_wishes(
        db.conn(),
        settings=db.settings(),
        street_code=args.get("street"),
        community_code=args.get("community"),
        status=args.get("status"),
        limit=args["limit"],
        offset=args["offset"],
    )


@bp.route("/wishes/<int:wish_id>")
@bp.response(200)
def wish_one(wish_id: int) -> Response:
    """One wish; the ETag is its version."""
    return _json(wishes.get_wish(db.conn(), wish_id, settings=db.settings()))


@bp.route("/wishes/<int:wish_id>/actions", methods=["POST"])
@bp.arguments(WishAction)
@bp.doc(parameters=[IF_MATCH])
@bp.response(200)
def wish_action(args: dict[str, Any], wish_id: int) -> Response:
    """Claim, release, done or feedback (If-Match: the version you saw)."""
    body = wishes.act_wish(
        db.conn(),
        current_user(),
        wish_id,
        args["action"],
        settings=db.settings(),
        version=_seen_version(),
        note=args["note"],
        member=args["member"],
        unit=args["unit"],
        ip=request.remote_addr,
    )
    return _json(body)
