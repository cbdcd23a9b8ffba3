"""Request arguments of the API (marshmallow): codes checked by pattern, errors name the field."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema as BaseSchema
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from geodata.layers import LAYERS

STREET = validate.Regexp(r"^[0-9]{9}$", error="a 9-digit street code")
COMMUNITY = validate.Regexp(r"^[0-9]{12}$", error="a 12-digit community code")
GRID = validate.Regexp(r"^[0-9]{15}$", error="a 15-digit grid code")


class Schema(BaseSchema):
    """Base of every argument schema: text never carries NUL bytes (PostgreSQL refuses them)."""

    @pre_load
    def _no_nul(self, data: Any, **kwargs: Any) -> Any:
        items = data.items() if hasattr(data, "items") else []
        for name, value in items:
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise ValidationError({name: ["contains a NUL byte"]})
        return data


class _OneScope:
    """Street or community, not both."""

    @validates_schema
    def _one_scope(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("street") and data.get("community"):
            raise ValidationError({"community": ["give street or community, not both"]})


class ScopeArgs(_OneScope, Schema):
    """A street or a community (none: the caller's whole scope)."""

    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)


class ReportArgs(ScopeArgs):
    """The report's scope (default: the caller's), language and masking."""

    lang = fields.String(validate=validate.OneOf(["zh", "en"]))
    unmasked = fields.Boolean(load_default=False)


class OverviewArgs(Schema):
    """A street (none: everything the caller sees)."""

    street = fields.String(validate=STREET)


class BoxArgs(Schema):
    """A small box ``west,south,east,north`` in degrees (WGS84)."""

    bbox = fields.List(fields.Float(), required=True, validate=validate.Length(equal=4))

    @pre_load
    def _split(self, data: Any, **kwargs: Any) -> Any:
        raw = data.get("bbox") if hasattr(data, "get") else None
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if isinstance(raw, str):
            return {"bbox": raw.split(",")}
        return data


class CommunityArgs(Schema):
    """One community."""

    community = fields.String(required=True, validate=COMMUNITY)


class BlindspotArgs(ScopeArgs):
    """Scope, kinds and how many rows of each kind."""

    kind = fields.List(fields.String(validate=validate.Length(max=40)))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))


class SearchArgs(Schema):
    """A code prefix."""

    q = fields.String(required=True, validate=validate.Length(min=1, max=64))


class DetailArgs(Schema):
    """Whether to show names and phones in clear (planners and admins; audited)."""

    unmasked = fields.Boolean(load_default=False)


class RosterArgs(ScopeArgs):
    """Scope, grid filter, masking and row limit."""

    grid = fields.String(validate=GRID)
    unmasked = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=100_000))


class CsvArgs(RosterArgs):
    """Which table as CSV."""

    table = fields.String(
        load_default="households", validate=validate.OneOf(["households", "members"])
    )


class SitesArgs(Schema):
    """Station siting: community, walking range, new stations (none: fewest that cover all)."""

    community = fields.String(required=True, validate=COMMUNITY)
    radius_m = fields.Float(load_default=500.0, validate=validate.Range(min=50, max=3000))
    k = fields.Integer(allow_none=True, load_default=3, validate=validate.Range(min=1, max=50))


class AuditArgs(Schema):
    """Newest first; optionally one action."""

    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=5000))
    action = fields.String(validate=validate.Length(max=40))
    before_id = fields.Integer(validate=validate.Range(min=1))


class NewUser(Schema):
    """A user to create."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=10, max=256))
    role = fields.String(required=True, validate=validate.OneOf(["viewer", "planner", "admin"]))
    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)
    lang = fields.String(load_default="zh", validate=validate.OneOf(["zh", "en"]))


class TokenArgs(Schema):
    """A name for the new token."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=64))


class JobArgs(_OneScope, Schema):
    """A background pairing run of a street or a community."""

    kind = fields.String(required=True, validate=validate.OneOf(["pairing"]))
    street = fields.String(validate=STREET)
    community = fields.String(validate=COMMUNITY)


class ProposalArgs(Schema):
    """A rebalance proposal for a community."""

    community = fields.String(required=True, validate=COMMUNITY)


class DecisionArgs(Schema):
    """Why a proposal is accepted or rejected (kept in the audit log)."""

    reason = fields.String(load_default="", validate=validate.Length(max=500))


class ImportArgs(Schema):
    """The layer an uploaded file goes into, and its CRS when the file does not say."""

    layer = fields.String(required=True, validate=validate.OneOf(list(LAYERS)))
    crs = fields.String(validate=validate.Length(max=40))
    skip_invalid = fields.Boolean(load_default=False)


class ImportFile(Schema):
    """The uploaded file."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})
