"""Schemathesis against the app's own OpenAPI document, every built-in check (status codes,
content types, headers and bodies as documented, invalid data rejected, valid data accepted, no
server error), over >= 1,000 cases."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import missing_required_header, positive_data_acceptance
from sqlalchemy.engine import make_url
from webhelpers import bearer

# werkzeug leaves spooled files of refused uploads to the garbage collector
EXAMPLES = 60  # per operation: about 25 operations give well over 1,000 cases
CASES: list[str] = []


def _app():
    """The app on the web test database (the ``web`` fixture creates it before any request)."""
    from gridsvc.settings import load_settings
    from gridsvc.web import create_app

    base = load_settings()
    url = make_url(base.effective_test_database_url)
    web_url = url.set(database=f"{url.database}_webapp").render_as_string(hide_password=False)
    config = {"TESTING": True, "GRIDSVC_NO_QUEUE": True}
    return create_app({**config, "GRIDSVC_SETTINGS": base.with_(database_url=web_url)})


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _app())


#: Operations whose valid input depends on stored data or policy, which no schema can state: an
#: uploaded file's content, the password policy (length setting, common-password list, not the
#: name), a contact's or a request's household and time window, a map box's size at the zoom
#: the data needs.
JUDGED_ON_DATA = {
    ("POST", "/api/imports"),
    ("POST", "/api/users"),
    ("POST", "/api/me/password"),
    ("POST", "/api/users/{username}/password"),
    ("POST", "/api/contacts"),
    ("POST", "/api/requests"),
    ("GET", "/api/households.geojson"),
}


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_document(case, web):
    # An admin scoped to the tiny street B: every operation is reachable and cheap.
    headers = bearer(web, "admin_b")
    if case.query and case.query.get("street") and case.query.get("community"):
        del case.query["community"]  # documented: street or community, not both
    response = case.call(headers=headers)
    CASES.append(f"{case.method} {case.path} {response.status_code}")
    excluded = []
    if (case.method, case.path) in JUDGED_ON_DATA:
        excluded.append(positive_data_acceptance)
    if case.path.endswith(("/accept", "/reject", "/actions")):  # no If-Match: 428 (RFC 6585)
        excluded.append(missing_required_header)
    case.validate_response(response, headers=headers, excluded_checks=excluded)


@pytest.mark.slow
def test_schemathesis_ran_enough_cases():
    statuses = sorted({c.rsplit(" ", 1)[1] for c in CASES})
    print(f"\nschemathesis: {len(CASES)} generated cases, statuses {', '.join(statuses)}")
    pairing = [c for c in CASES if " /api/proposals" in c or " /api/plans" in c]
    paths = sorted({c.split(" ")[1] for c in pairing})
    print(f"schemathesis: {len(pairing)} of them on the pairing operations {', '.join(paths)}")
    assert len(CASES) >= 1000
    assert len(paths) == 5  # plans, proposals, one proposal, accept, reject
