"""Escaping of values drawn into map HTML, and masking of names and phones in reports."""

from __future__ import annotations

import html
import math
import re
from typing import Any

from markupsafe import Markup

# folium writes popup/tooltip HTML into JavaScript template literals: after HTML escaping,
# these three would still be live there (`${...}`, a closing backtick, an escape).
_JS_LITERAL = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def esc(value: Any) -> str:
    """Text safe inside HTML, HTML attributes and JavaScript template literals.

    ``None`` and NaN become an empty string; ``&<>"'`` and `` ` $ \\ `` become entities, so
    a value can go into folium popups, tooltips and GeoJSON properties unchanged.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True).translate(_JS_LITERAL)


def finalize(value: Any) -> Any:
    """Jinja2 ``finalize``: every printed value escaped by :func:`esc` (markup passes as is).

    Use with ``autoescape=True`` so that ``` `` ``, ``$`` and ``\\`` become entities too.
    """
    if isinstance(value, Markup):
        return value
    return Markup(esc(value))


def mask_name(name: Any) -> str:
    """Mask a person's name: 张三丰 → 张*丰, 张三 → 张*, 欧阳小明 → 欧**明."""
    text = "" if name is None else str(name).strip()
    if len(text) <= 1:
        return "*" if text else ""
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def mask_phone(phone: Any) -> str:
    """Mask a phone number, keeping the first three and last four digits: 138****1234."""
    digits = re.sub(r"\D", "", "" if phone is None else str(phone))
    if len(digits) == 13 and digits.startswith("86"):  # +86 country code
        digits = digits[2:]
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


#: Household flags left out of exports unless full detail is asked for and allowed.
SENSITIVE_FLAGS = ("elderly_alone", "disabled", "low_income", "children", "vulnerable")

#: Blind-spot kinds that list places, not people: their names are not masked.
PLACE_KINDS = frozenset(
    {"grids_without_members", "uncovered_commercial", "station_gaps", "suggested_sites"}
)


def protect(frame: Any, *, masked: bool, people: bool) -> Any:
    """A copy of a table fit for export.

    Parameters
    ----------
    frame
        A (Geo)DataFrame.
    masked
        Mask phones (and names, when ``people``) and drop :data:`SENSITIVE_FLAGS` columns.
    people
        Whether the rows are people or households (their ``name`` columns are masked).
    """
    if not masked:
        return frame.copy()
    out = frame.drop(columns=[c for c in SENSITIVE_FLAGS if c in frame.columns])
    for column in out.columns:
        if column == "phone" or str(column).endswith("_phone"):
            out[column] = out[column].map(mask_phone)
        elif people and (column == "name" or str(column).endswith("_name")):
            out[column] = out[column].map(mask_name)
    return out
