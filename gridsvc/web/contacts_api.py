"""API of the contact log and the overdue lists (members, cadres, planners)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gridsvc.contacts import list_contacts, log_contact, overdue
from gridsvc.web import db, schemas
from gridsvc.web.auth import current_user
from gridsvc.web.schemas import COMMUNITY, STREET, Schema, _OneScope

bp = Blueprint("contacts", __name__, url_prefix="/api", description="Contact log and cadence")
bp.ARGUMENTS_PARSER = schemas.StrictParser()
WHEN, DAY = schemas.WHEN, schemas.DAY
CODE = schemas.RECORD_CODE


class NewContact(Schema):
    """A contact: household code, channel, optional note, time (Beijing time), location."""

    household = fields.String(required=True, validate=CODE)
    channel = fields.String(
        required=True, validate=validate.OneOf(["visit", "phone", "wechat", "other"])
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    at = fields.String(load_default=None, allow_none=True, validate=WHEN)
    lon = fields.Float(load_default=None, allow_none=True)
    lat = fields.Float(load_default=None, allow_none=True)
    member = fields.String(load_default=None, allow_none=True, validate=CODE)
    corrects = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**62)
    )


class ContactQuery(Schema):
    """Filters and paging of the contact list."""

    household = fields.String(validate=CODE)
    member = fields.String(validate=CODE)
    community = fields.String(validate=COMMUNITY)
    since = fields.String(validate=WHEN)
    until = fields.String(validate=WHEN)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class OverdueQuery(_OneScope, Schema):
    """A street or community (default: the caller's scope) and a date."""

    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)
    as_of = fields.String(validate=DAY)


@bp.route("/contacts", methods=["POST"])
@bp.arguments(NewContact)
@bp.response(201)
@bp.alt_response(200, description="The same household, person and minute: the existing contact.")
def add_contact(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Log a contact with a household (channel: visit, phone, wechat or other).

    Members log their own households, cadres their members', planners and admins any of their
    scope. ``at`` without an offset is Beijing time (default now); ``corrects`` names a contact
    of yours from the last 24 hours that this one replaces.
    """
    row, new = log_contact(
        db.conn(), current_user(), settings=db.settings(), ip=request.remote_addr, **args
    )
    return row, 201 if new else 200


@bp.route("/contacts")
@bp.arguments(ContactQuery, location="query")
@bp.response(200)
def contacts(args: dict[str, Any]) -> dict[str, Any]:
    """Contacts of the caller's scope, newest first: filters household, member, community,
    since, until; paged with limit and offset (``total`` counts every match)."""
    return list_contacts(db.conn(), settings=db.settings(), **args)


@bp.route("/contacts/overdue")
@bp.arguments(OverdueQuery, location="query")
@bp.response(200)
def overdue_view(args: dict[str, Any]) -> dict[str, Any]:
    """Households overdue for a contact at ``as_of`` and each member's figures."""
    report = overdue(
        db.conn(),
        settings=db.settings(),
        street_code=args.get("street"),
        community_code=args.get("community"),
        as_of=args.get("as_of"),
    )
    return report.to_dict()
