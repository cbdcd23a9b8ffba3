"""API of accounts: users and their tokens (admins, inside their scope), own password, audit log.

Each view parses, calls one service of :mod:`gridsvc.accounts.manage` (which checks the scope
and writes the audit entry) and serialises. A user outside the caller's scope is invisible to it
(row-level security): its name answers 404, as a name that does not exist does.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gridsvc.accounts import audit, manage
from gridsvc.accounts.passwords import MAX_LENGTH
from gridsvc.accounts.users import ROLES, list_users, require
from gridsvc.web import db
from gridsvc.web.auth import current_user, start_session
from gridsvc.web.schemas import (
    COMMUNITY,
    STREET,
    TEXT,
    USERNAME,
    AuditArgs,
    Schema,
    StrictParser,
)

bp = Blueprint("users", __name__, url_prefix="/api", description="Users, tokens and the audit log")
bp.ARGUMENTS_PARSER = StrictParser()
PASSWORD = validate.Length(min=1, max=MAX_LENGTH)


class NewUser(Schema):
    """A user to create: a street or a community (none: an admin of everything, which only an
    admin of everything may create); the password policy is checked by the service."""

    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, validate=PASSWORD)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)
    member = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the member's code (role member): the user's scope is theirs"},
    )
    cadre = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the cadre's code (role cadre): the user's scope is theirs"},
    )
    lang = fields.String(load_default="zh", validate=validate.OneOf(["zh", "en"]))


class UserChange(Schema):
    """Disable (``false``: sessions and tokens stop at once) or enable (``true``) a user."""

    active = fields.Boolean(required=True)


class NewPassword(Schema):
    """A new password for another user; omitted: a random one, returned once."""

    password = fields.String(validate=PASSWORD)


class OwnPassword(Schema):
    """The caller's current password and the new one."""

    current_password = fields.String(required=True, validate=PASSWORD)
    new_password = fields.String(required=True, validate=PASSWORD)


class TokenArgs(Schema):
    """A name for the new token."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=64), TEXT])


def _min_length() -> int:
    return db.settings().password_min_length


@bp.route("/users")
@bp.response(200)
def users() -> dict[str, Any]:
    """The users inside the caller's scope (admins)."""
    require(current_user(), admin=True)
    return {"users": [u.to_dict() for u in list_users(db.conn())]}


@bp.route("/users", methods=["POST"])
@bp.arguments(NewUser)
@bp.response(201)
def add_user(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create a user inside the caller's scope (admins)."""
    user = manage.add_user(
        db.conn(),
        current_user(),
        args["username"],
        args["password"],
        role=args["role"],
        street_code=args.get("street"),
        community_code=args.get("community"),
        lang=args["lang"],
        min_password_length=_min_length(),
        member_code=args.get("member"),
        cadre_code=args.get("cadre"),
        ip=request.remote_addr,
    )
    return user.to_dict(), 201


@bp.route("/users/<string:username>", methods=["PATCH"])
@bp.arguments(UserChange)
@bp.response(200)
def change_user(args: dict[str, Any], username: str) -> dict[str, Any]:
    """Disable or enable a user inside the caller's scope (admins)."""
    user = manage.set_active(
        db.conn(), current_user(), username, args["active"], ip=request.remote_addr
    )
    return user.to_dict()


@bp.route("/users/<string:username>/password", methods=["POST"])
@bp.arguments(NewPassword)
@bp.response(200)
def reset_password(args: dict[str, Any], username: str) -> dict[str, Any]:
    """Reset the password of a user inside the caller's scope (admins); ends its sessions."""
    secret = manage.reset_password(
        db.conn(),
        current_user(),
        username,
        args.get("password"),
        min_password_length=_min_length(),
        ip=request.remote_addr,
    )
    body: dict[str, Any] = {"username": username, "sessions_ended": True}
    if not args.get("password"):
        body["password"] = secret
    return body


@bp.route("/me/password", methods=["POST"])
@bp.arguments(OwnPassword)
@bp.response(200)
def change_own_password(args: dict[str, Any]) -> dict[str, Any]:
    """Change the caller's own password; its other sessions end (this one goes on)."""
    user = manage.change_own_password(
        db.conn(),
        current_user(),
        args["current_password"],
        args["new_password"],
        min_password_length=_min_length(),
        ip=request.remote_addr,
    )
    if not request.headers.get("Authorization"):
        start_session(user)
    return {"username": user.username, "changed": True}


@bp.route("/users/<string:username>/tokens")
@bp.response(200)
def tokens(username: str) -> dict[str, Any]:
    """The API tokens of a user inside the caller's scope (admins; never the secret)."""
    return {"tokens": manage.list_tokens(db.conn(), _admin(), username)}


@bp.route("/users/<string:username>/tokens", methods=["POST"])
@bp.arguments(TokenArgs)
@bp.response(201)
def add_token(args: dict[str, Any], username: str) -> tuple[dict[str, Any], int]:
    """Issue an API token for a user inside the caller's scope (admins); shown only here."""
    user, token = manage.issue_token(
        db.conn(), current_user(), username, args["name"], ip=request.remote_addr
    )
    return {"username": user.username, "name": args["name"], "token": token}, 201


@bp.route("/users/<string:username>/tokens/<int:token_id>", methods=["DELETE"])
@bp.response(204)
def revoke_token(username: str, token_id: int) -> tuple[str, int]:
    """Revoke a token of a user inside the caller's scope (admins); it stops at once."""
    manage.revoke_token(db.conn(), _admin(), username, token_id, ip=request.remote_addr)
    return "", 204


@bp.route("/audit")
@bp.arguments(AuditArgs, location="query")
@bp.response(200)
def audit_log(args: dict[str, Any]) -> dict[str, Any]:
    """The audit entries of the caller's scope, newest first (admins)."""
    require(current_user(), admin=True)
    return {"entries": audit.list_entries(db.conn(), **args)}


def _admin():
    user = current_user()
    require(user, admin=True)
    return user
