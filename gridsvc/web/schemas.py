"""Request arguments of the API (marshmallow): codes checked by pattern, errors name the field."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import RAISE, ValidationError, fields, pre_load, validate, validates_schema
from marshmallow import Schema as BaseSchema
from webargs.flaskparser import FlaskParser

from geodata.layers import LAYERS
from gridsvc.coverage.blindspots import KINDS

#: A new user's name through the API: Latin letters, digits, ``_ . @ -`` and Chinese characters.
USERNAME = validate.Regexp(
    r"^[A-Za-z0-9_.@\-\u4e00-\u9fff]{1,64}$",
    error="1 to 64 letters (Latin or Chinese), digits, '_', '.', '@' or '-'",
)
#: Said of every street/community pair: the API takes one of them, never both.
ONE_SCOPE = "Give street or community, not both (422 when both are given)."

STREET = validate.Regexp(r"^[0-9]{9}$", error="a 9-digit street code")
COMMUNITY = validate.Regexp(r"^[0-9]{12}$", error="a 12-digit community code")
GRID = validate.Regexp(r"^[0-9]{15}$", error="a 15-digit grid code")
#: Free text: no control characters but tab, line feed and carriage return (the app refuses
#: them in any parameter; PostgreSQL refuses NUL).
TEXT = validate.Regexp(
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="no control characters such as NUL"
)

#: A date or a date and time (ISO 8601; without an offset: GRIDSVC_TIMEZONE, Beijing time).
WHEN = validate.Regexp(
    r"^(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(Z|[+-](0\d|1[0-4]):[0-5]\d)?)?$",
    error="expected ISO 8601 like 2026-12-01 or 2026-12-01T09:30",
)
#: A date (ISO 8601).
DAY = validate.Regexp(
    r"^(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])$", error="expected a date like 2026-12-01"
)
#: A record's code in a query or body: bounded, no control characters.
RECORD_CODE = [validate.Length(min=1, max=64), TEXT]


class StrictParser(FlaskParser):
    """Query parameters the document does not name are refused (422 naming them), as unknown
    JSON and form fields are: a misspelt ``comunity`` must not silently widen the answer."""

    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict[str, str | None]] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
    }


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

    street = fields.String(validate=STREET, metadata={"description": ONE_SCOPE})
    community = fields.String(validate=COMMUNITY, metadata={"description": ONE_SCOPE})


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

    kind = fields.List(
        fields.String(validate=validate.OneOf(KINDS)),
        metadata={"description": "Kinds to list (repeatable); default every kind."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))


class SearchArgs(Schema):
    """A code prefix."""

    q = fields.String(required=True, validate=[validate.Length(min=1, max=64), TEXT])


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
    action = fields.String(validate=[validate.Length(max=40), TEXT])
    before_id = fields.Integer(validate=validate.Range(min=1))


class JobArgs(_OneScope, Schema):
    """A background pairing run of a street or a community."""

    kind = fields.String(required=True, validate=validate.OneOf(["pairing"]))
    street = fields.String(validate=STREET, metadata={"description": ONE_SCOPE})
    community = fields.String(validate=COMMUNITY, metadata={"description": ONE_SCOPE})


class ProposalArgs(Schema):
    """A rebalance proposal for a community."""

    community = fields.String(required=True, validate=COMMUNITY)


class DecisionArgs(Schema):
    """Why a proposal is accepted or rejected (kept in the audit log)."""

    reason = fields.String(load_default="", validate=[validate.Length(max=500), TEXT])


class ImportArgs(Schema):
    """The layer an uploaded file goes into, and its CRS when the file does not say."""

    layer = fields.String(required=True, validate=validate.OneOf(list(LAYERS)))
    crs = fields.String(validate=[validate.Length(max=40), TEXT])
    skip_invalid = fields.Boolean(load_default=False)
    dry_run = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Only report what the import would do (and the address "
            "match report of households/members); nothing is written."
        },
    )
    retire_missing = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Mark households/members of an address roster's communities "
            "that the file no longer holds as moved out."
        },
    )


class ImportFile(Schema):
    """The uploaded file."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ErrorBody(BaseSchema):
    """The body of every error the API answers (4xx and 5xx)."""

    error = fields.String(
        required=True,
        metadata={"description": "Error class, e.g. InputRejected, NotFound, InvalidRequest"},
    )
    message = fields.String(
        required=True, metadata={"description": "What went wrong, naming the field or record"}
    )
    details = fields.Raw(
        metadata={
            "description": "Rejected records ({source, record, field, reason, value}) or, "
            "for invalid parameters, the messages per location and field"
        }
    )


#: The upload's multipart body as documented: the form fields of :class:`ImportArgs` and the
#: file of :class:`ImportFile` in one schema (flask-smorest documents only the last of two).
IMPORT_FORM = {
    "schema": {
        "type": "object",
        "required": ["layer", "file"],
        "additionalProperties": False,
        "properties": {
            "layer": {"type": "string", "enum": list(LAYERS)},
            "crs": {"type": "string", "maxLength": 40, "pattern": TEXT.regex.pattern},
            "skip_invalid": {"type": "boolean", "default": False},
            "file": {"type": "string", "format": "binary"},
        },
    }
}


#: The ``kind`` path parameter of ``/api/records/{kind}/{code}`` as documented (an unknown kind
#: answers 422 naming it, so the route takes any text).
RECORD_KIND = {
    "in": "path",
    "name": "kind",
    "required": True,
    "schema": {"type": "string", "enum": ["household", "member", "building"]},
}
