"""The scope probe, kept as a test: every route x every role x street B's objects.

Routes come from the app's URL map and from its OpenAPI document (path, query and body
parameters), so a route added later is walked without editing this module. Every parameter is
filled with one of street B's objects (community, street, household, member, building, user,
token, job, proposal). Roles: a viewer, a planner and the admin of street A, a viewer of a
community of A, and the unscoped admin.

It fails on any 200 that carries street B's data for a role outside B (B's codes and names,
minus what the request itself sent, since a page may echo it back); on any unsafe request of
such a role aimed at B's objects that does not fail (status under 400); and if anything of B
changed. The unscoped admin is the control: it must see B's data on enough routes, which proves
the parameters reach B's objects and the markers would catch a leak.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

import pytest
from sqlalchemy import text
from webhelpers import COMMUNITY_B, STREET_B, bearer, households_csv, owner_engine

from gridsvc.coverage.sites import suggest_sites
from gridsvc.pairing import service

SCOPED_ROLES = ("viewer_a", "planner_a", "admin_a", "viewer_ca")
CONTROL = "admin"
#: Values of street B that must never reach a role outside it.
B_MARKERS = (
    COMMUNITY_B,
    STREET_B,
    "530102902001001",
    "测试街道",
    "测试社区",
    "测试网格",
    "测试楼",
    "B-ZZ-1",
    "M-ZZ-1",
    "王小",
    "李四",
    "viewer_b",
    "admin_b",
    *(f"H-ZZ-{i}" for i in range(1, 21)),
)
#: Endpoints outside the probe: no login (their own tests), or unrelated to any scope.
PUBLIC = {"static", "auth.login", "api-docs.openapi_json", "pages.lang"}
#: Unsafe endpoints whose success touches nothing of B whatever is sent.
HARMLESS = {"auth.logout"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
NEW_PASSWORD = "Probe password 2026"


@dataclass(frozen=True)
class BObjects:
    """Street B's objects the probe aims at."""

    job_id: int
    proposal_id: int
    token_id: int
    fingerprint: tuple
    site_run_id: int = 0
    request_id: int = 0
    wish_id: int = 0
    household: str = ""


@dataclass
class Findings:
    """What the probe saw."""

    leaks: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    control_hits: set[str] = field(default_factory=set)
    requests: int = 0


def _fingerprint(conn) -> tuple:
    """Everything of B a probe could change: users, tokens, proposals, jobs, pairs, households."""
    queries = (
        "SELECT username, role, active, password_hash, street_id, community_id "
        "FROM users ORDER BY id",
        "SELECT id, user_id, revoked_at FROM api_tokens ORDER BY id",
        "SELECT id, status FROM proposals ORDER BY id",
        "SELECT count(*) FROM jobs",
        "SELECT count(*), max(run_id) FROM household_pairs",
        "SELECT count(*), max(code) FROM households",
        "SELECT version FROM plans ORDER BY community_id",
        "SELECT id, state, version, member_id, reason FROM requests ORDER BY id",
        "SELECT count(*) FROM request_events",
        "SELECT id, state, version, member_id, unit_name FROM wishes ORDER BY id",
    )
    return tuple(tuple(conn.execute(text(q)).all()) for q in queries)


@pytest.fixture(scope="module")
def b_objects(web, app) -> Iterator[BObjects]:
    """A plan, a proposal and a job of community B (made by B's own admin); removed after the
    module, so other modules find street B as the fixtures made it."""
    engine = owner_engine(web)
    with engine.begin() as conn:
        cid = conn.scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": COMMUNITY_B})
        planned_here = service.plan_version(conn, cid) == 0
        if planned_here:
            service.run_pairing(
                conn, settings=web.settings, community_code=COMMUNITY_B, level="households"
            )
        site_run = suggest_sites(
            conn,
            community_code=COMMUNITY_B,
            radius_m=300,
            k=1,
            candidates="lattice",
            time_limit=5,
            settings=web.settings,
        ).run_id
    client = app.test_client()
    h = bearer(web, "admin_b")
    made = client.post("/api/proposals", json={"community": COMMUNITY_B}, headers=h)
    assert made.status_code == 201, made.data[:300]
    job = client.post("/api/jobs", json={"kind": "pairing", "community": COMMUNITY_B}, headers=h)
    assert job.status_code in (200, 202), job.data[:300]
    with engine.connect() as conn:
        token_id = conn.scalar(
            text(
                "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE u.username = 'viewer_b' ORDER BY t.id LIMIT 1"
            )
        )
    with engine.begin() as conn:
        household = conn.execute(
            text("SELECT id, code FROM households WHERE community_id = :c ORDER BY id LIMIT 1"),
            {"c": cid},
        ).first()
        request_id = conn.scalar(
            text(
                "INSERT INTO requests (community_id, household_id, category, text, channel, "
                "due_at) VALUES (:c, :h, 'repair', 'probe', 'phone', now()) RETURNING id"
            ),
            {"c": cid, "h": household.id},
        )
        wish_id = conn.scalar(
            text(
                "INSERT INTO wishes (community_id, household_id, flag, text, value_yuan, "
                "wanted_by) VALUES (:c, :h, 'hardship_member', 'probe', 1, current_date) "
                "RETURNING id"
            ),
            {"c": cid, "h": household.id},
        )
    with engine.connect() as conn:
        fingerprint = _fingerprint(conn)
    made_ids = {"p": made.get_json()["id"], "j": job.get_json()["id"], "c": cid, "s": site_run}
    yield BObjects(
        made_ids["j"],
        made_ids["p"],
        token_id,
        fingerprint,
        site_run_id=site_run,
        request_id=request_id,
        wish_id=wish_id,
        household=household.code,
    )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM requests WHERE community_id = :c"), made_ids)
        conn.execute(text("DELETE FROM wishes WHERE community_id = :c"), made_ids)
        conn.execute(text("DELETE FROM proposals WHERE id = :p"), made_ids)
        conn.execute(text("DELETE FROM jobs WHERE id = :j"), made_ids)
        conn.execute(text("DELETE FROM site_runs WHERE id = :s"), made_ids)
        if planned_here:
            conn.execute(text("DELETE FROM plans WHERE community_id = :c"), made_ids)
            conn.execute(text("DELETE FROM pairing_runs WHERE community_id = :c"), made_ids)
    engine.dispose()


# --- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method of one URL rule, with what the OpenAPI document says of it (if anything)."""

    endpoint: str
    rule: str
    method: str
    query: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    content: str | None = None


def routes(app) -> list[Route]:
    """Every method of every rule of the URL map, enriched from the OpenAPI document."""
    with app.test_request_context():
        spec = app.extensions["gridsvc.api"].spec.to_dict()
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        openapi_path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = spec["paths"].get(openapi_path, {}).get(method.lower(), {})
            query = tuple(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
            content = next(iter(operation.get("requestBody", {}).get("content", {})), None)
            body: tuple[str, ...] = ()
            if content:
                schema = operation["requestBody"]["content"][content]["schema"]
                body = tuple(_properties(spec, schema))
            found.append(Route(rule.endpoint, rule.rule, method, query, body, content))
    return found


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return list(schema.get("properties", {}))


def test_the_probe_walks_every_route_and_the_api_document(app):
    """The URL map and the OpenAPI document agree: every API operation is walked."""
    walked = {(r.rule, r.method) for r in routes(app)}
    with app.test_request_context():
        spec = app.extensions["gridsvc.api"].spec.to_dict()
    for path, operations in spec["paths"].items():
        for method in set(operations) & {"get", "post", "put", "patch", "delete"}:
            rule = re.sub(r"\{([a-z_]+)\}", r"<\1>", path)
            assert any(
                re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"<\1>", r) == rule and m == method.upper()
                for r, m in walked
            ), (method, path)
    assert len(walked) >= 50


# --- filling parameters with B's objects ----------------------------------------------------


def _path_values(b: BObjects) -> dict[str, list[Any]]:
    return {
        "community": [COMMUNITY_B],
        "username": ["viewer_b", "admin_b"],
        "token_id": [b.token_id],
        "job_id": [b.job_id],
        "proposal_id": [b.proposal_id],
        "run_id": [b.site_run_id],
        "code": ["H-ZZ-1", "M-ZZ-1", "B-ZZ-1"],
        "request_id": [b.request_id],
        "wish_id": [b.wish_id],
        "kind_code": [("household", "H-ZZ-1"), ("member", "M-ZZ-1"), ("building", "B-ZZ-1")],
    }


def _body_values(b: BObjects) -> dict[str, Any]:
    return {
        "community": COMMUNITY_B,
        "street": STREET_B,
        "scope": COMMUNITY_B,
        "username": "probe_user",
        "password": NEW_PASSWORD,
        "role": "admin",
        "name": "probe",
        "kind": "pairing",
        "active": False,
        "radius_m": 300,
        "k": 1,
        "layer": "households",
        "lang": "zh",
        "current_password": "not the password",
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
        "proposal_id": b.proposal_id,
        "action": "accept",
        "level": "households",
        "reason": "probe",
        "household": b.household,
        "category": "repair",
        "text": "probe",
        "flag": "hardship_member",
        "value_yuan": "1",
        "wanted_by": "2030-01-01",
    }


def _queries(route: Route) -> list[dict[str, str]]:
    """Query strings aimed at B (street and community apart: together they are refused)."""
    names = set(route.query) or {"community", "street", "q"}  # pages: their usual parameters
    variants: list[dict[str, str]] = [{}]
    if "community" in names:
        variants.append({"community": COMMUNITY_B})
    if "street" in names:
        variants.append({"street": STREET_B})
    if "q" in names:
        variants.append({"q": "H-ZZ"})
    if "unmasked" in names:
        variants.append({"unmasked": "true"})
    return variants


def _paths(route: Route, b: BObjects) -> list[str]:
    values = _path_values(b)
    paths = [route.rule]
    if "<string:kind>" in route.rule:
        paths = [
            route.rule.replace("<string:kind>", kind).replace("<string:code>", code)
            for kind, code in values["kind_code"]
        ]
    for name in re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", route.rule):
        if name == "kind" or (name == "code" and "<string:kind>" in route.rule):
            continue
        assert name in values, f"the probe has no value of street B for <{name}> ({route.rule})"
        pattern = re.compile(rf"<(?:[a-z]+:)?{name}>")
        paths = [pattern.sub(str(v), p) for p in paths for v in values[name]]
    return paths


def _bodies(route: Route) -> list[str | None]:
    """Which scope an unsafe request's body names: B's community, B's street, or (creating a
    user) none at all, which is a user of every scope."""
    if route.method not in UNSAFE:
        return [None]
    creates_user = "role" in route.body or route.endpoint == "accounts.users"
    return ["community", "street"] + (["none"] if creates_user else [])


def _request(
    route: Route, path: str, query: dict[str, str], b: BObjects, scope: str | None = None
) -> dict[str, Any]:
    url = path + ("?" + urlencode(query) if query else "")
    call: dict[str, Any] = {"path": url, "method": route.method}
    if route.method not in UNSAFE:
        return call
    values = _body_values(b)
    for other in {"community", "street", "none"} - {scope}:
        values.pop(other, None)
    if scope != "community":
        values.pop("scope", None)
    if route.content == "application/json":
        call["json"] = {k: values[k] for k in route.body if k in values}
    else:  # forms and uploads: every field the probe knows, and B's households as the file
        data: dict[str, Any] = {k: str(v) for k, v in values.items()}
        call["data"] = data  # the file (B's households) is added per request: it is read once
    return call


def _sent(call: dict[str, Any]) -> str:
    return unquote(call["path"]) + repr(call.get("json", "")) + repr(call.get("data", ""))


def _markers_in(body: str, sent: str) -> list[str]:
    return [m for m in B_MARKERS if m in body and m not in sent]


# --- the walk ----------------------------------------------------------------------------------


def _walk(app, web, b: BObjects) -> Findings:
    findings = Findings()
    client = app.test_client()
    for route in routes(app):
        for path in _paths(route, b):
            for query in _queries(route):
                for scope in _bodies(route):
                    call = _request(route, path, query, b, scope)
                    for role in (*SCOPED_ROLES, CONTROL):
                        if role == CONTROL and route.method in UNSAFE:
                            continue  # the control reads only: its writes on B are legitimate
                        _probe(client, web, route, call, role, findings, scope)
    return findings


def _probe(
    client,
    web,
    route: Route,
    call: dict[str, Any],
    role: str,
    findings: Findings,
    scope: str | None,
) -> None:
    headers = {**bearer(web, role), "If-Match": '"1"'}
    sent = dict(call)
    if "data" in call:
        upload = (io.BytesIO(households_csv("H-PROBE-", rows=3)), "b.csv")
        sent["data"] = {**call["data"], "file": upload}
    answer = client.open(headers=headers, **sent)
    findings.requests += 1
    where = f"{role} {route.method} {call['path']} -> {answer.status_code}"
    body = ""
    if answer.status_code == 200:
        data = answer.get_data()
        zipped = data[:2] == b"PK"  # an XLSX: look inside
        body = _unzip_text(data) if zipped else data.decode("utf-8", "replace")
    leaked = _markers_in(body, _sent(call))
    if role == CONTROL:
        if leaked:
            findings.control_hits.add(route.rule)
        return
    if leaked:
        findings.leaks.append(f"{where}: carries {leaked[:4]}")
    unsafe = route.method in UNSAFE and route.endpoint not in HARMLESS
    if unsafe and answer.status_code < 400 and _aimed_at_b(route, call, scope):
        findings.allowed.append(where)


def _aimed_at_b(route: Route, call: dict[str, Any], scope: str | None) -> bool:
    """Whether an unsafe request names one of B's objects, or a user of no scope, in what the
    endpoint reads: its path or query, its JSON body (fields from the OpenAPI document), or a
    form's community or scope (pages read ``community`` from the form or the query; a page that
    ignores the field falls back to the caller's own scope, which the fingerprint covers)."""
    path, _, query = unquote(call["path"]).partition("?")
    if any(m in path for m in B_MARKERS) or re.search(r"/(proposals|jobs|tokens)/\d+", path):
        return True
    read = set(route.query) or {"community"}  # pages read the community from query or form
    if any(name in read & {"community", "street"} for name in parse_qs(query)):
        return True
    if scope == "none":  # a user of every scope
        return True
    body = call.get("json")
    if body is not None:
        return COMMUNITY_B in body.values() or STREET_B in body.values()
    return (call.get("data") or {}).get("community") == COMMUNITY_B


def _unzip_text(data: bytes) -> str:
    """The text of an XLSX (its XML parts), for markers."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(
            archive.read(n).decode("utf-8", "replace")
            for n in archive.namelist()
            if n.endswith(".xml")
        )


@pytest.fixture(scope="module")
def findings(app, web, b_objects) -> Iterator[Findings]:
    """One walk shared by the assertions below."""
    yield _walk(app, web, b_objects)


def test_no_route_hands_street_b_data_to_another_scope(findings):
    print(f"probe: {findings.requests} requests, control saw B on {len(findings.control_hits)}")
    assert findings.requests > 500
    assert not findings.leaks, "\n".join(findings.leaks[:40])


def test_no_write_aimed_at_street_b_succeeds_from_another_scope(findings, web, b_objects):
    assert not findings.allowed, "\n".join(findings.allowed[:40])
    engine = owner_engine(web)
    with engine.connect() as conn:
        after = _fingerprint(conn)
    engine.dispose()
    assert after == b_objects.fingerprint  # nothing of anyone changed


def test_the_control_sees_street_b_so_the_probe_can_see_a_leak(findings):
    """The unscoped admin may see B: on the data, user, token, job and audit routes it does."""
    expected = {
        "/api/communities",
        "/api/users",
        "/api/audit",
        "/api/records/<string:kind>/<string:code>",
        "/api/roster",
        "/api/search",
        "/users",
        "/audit",
        "/roster",
    }
    missing = expected - findings.control_hits
    assert not missing, missing
    assert len(findings.control_hits) >= 15, sorted(findings.control_hits)
