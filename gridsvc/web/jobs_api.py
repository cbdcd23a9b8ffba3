"""API of background jobs and of the planner's rebalance proposals (ETag / If-Match)."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, current_app, request
from flask_smorest import Blueprint

from gridsvc import jobs
from gridsvc.accounts import audit
from gridsvc.accounts.users import User, require
from gridsvc.coverage._data import resolve_scope
from gridsvc.errors import InputRejected, Reject
from gridsvc.pairing import service as pairing
from gridsvc.portal._sql import community_id
from gridsvc.portal.proposals import load_proposal
from gridsvc.web import db, schemas
from gridsvc.web.auth import current_user

bp = Blueprint("jobs", __name__, url_prefix="/api", description="Background jobs and proposals")
bp.ARGUMENTS_PARSER = schemas.StrictParser()


def queue_url() -> str:
    """Where the job queue lives (the app role's database URL)."""
    return str(db.engine().url.render_as_string(hide_password=False))


def enqueue(
    user: User,
    kind: str,
    params: dict[str, Any],
    *,
    street_id: int | None = None,
    community_id: int | None = None,
    payload: bytes | None = None,
) -> dict[str, Any]:
    """Record a job (audited), commit it and put it on the queue; the 202 answer's body."""
    connection = db.conn()
    job_id = jobs.create_job(
        connection,
        kind,
        user_id=user.id,
        params=params,
        street_id=street_id,
        community_id=community_id,
        payload=payload,
    )
    audit.record(connection, "job_start", user=user, target=f"{kind} job {job_id}")
    connection.commit()
    db.rescope()
    if not current_app.config.get("GRIDSVC_NO_QUEUE"):
        jobs.defer_job(queue_url(), job_id)
    return {"id": job_id, "status": "queued", "url": f"/api/jobs/{job_id}"}


@bp.route("/jobs", methods=["POST"])
@bp.arguments(schemas.JobArgs)
@bp.response(202)
def start_job(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Queue a pairing run of a street or community (planners); poll ``/api/jobs/<id>``.

    A planner has at most one queued or running pairing job per scope: asking again answers
    that job's id (``"existing": true``) instead of queuing another.
    """
    user = current_user()
    require(user, plan=True)
    scope = resolve_scope(
        db.conn(), street_code=args.get("street"), community_code=args.get("community")
    )
    params = {
        "street": args.get("street"),
        "community": args.get("community"),
        "username": user.username,
    }
    street_id, community_id = user.street_id, user.community_id  # "all": the caller's scope
    if scope.level == "street":
        street_id, community_id = int(scope.street_ids[0]), None
    elif scope.level == "community":
        street_id, community_id = None, int(scope.community_ids[0])
    running = jobs.active_job(
        db.conn(), args["kind"], user_id=user.id, street_id=street_id, community_id=community_id
    )
    if running is not None:
        job_id, status = running
        return {"id": job_id, "status": status, "url": f"/api/jobs/{job_id}", "existing": True}, 202
    body = enqueue(user, args["kind"], params, street_id=street_id, community_id=community_id)
    return {**body, "existing": False}, 202


@bp.route("/jobs/<int:job_id>")
@bp.response(200)
def job(job_id: int) -> dict[str, Any]:
    """A job's status, progress, result or error (your own jobs; admins: those in their scope).

    An import job's result holds its counts and its first 500 rejects; ``has_output`` says
    whether ``rejects.csv`` has the full list.
    """
    return jobs.job_status(db.conn(), job_id, user=current_user())


@bp.route("/jobs/<int:job_id>/rejects.csv")
@bp.response(200, content_type="text/csv")
def job_rejects(job_id: int) -> Response:
    """Every reject of a finished import job as CSV (UTF-8 with BOM, as the CLI writes it)."""
    user = current_user()
    body = jobs.job_output(db.conn(), job_id, user=user)
    audit.record(db.conn(), "export_rejects", user=user, target=f"import job {job_id}")
    response = Response(body, mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="job-{job_id}-rejects.csv"'
    return response


def _json(body: dict[str, Any], *, status: int = 200, etag: int | None = None) -> Response:
    response = current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )
    if etag is not None:
        response.set_etag(str(etag))
    return response


@bp.route("/plans/<string:community>")
@bp.response(200)
def plan(community: str) -> Response:
    """The community's plan version; the ETag to send as If-Match when accepting."""
    cid = community_id(db.conn(), community)
    version = pairing.plan_version(db.conn(), cid)
    return _json({"community": community, "version": version}, etag=version)


@bp.route("/proposals", methods=["POST"])
@bp.arguments(schemas.ProposalArgs)
@bp.response(201)
def propose(args: dict[str, Any]) -> Response:
    """Run a rebalance of a community and keep it as a proposal (planners).

    The ETag is the plan version the proposal was made from: send it back as If-Match to accept.
    """
    user = current_user()
    require(user, plan=True)
    proposal = pairing.propose_rebalance(
        db.conn(),
        community_code=args["community"],
        settings=db.settings(),
        created_by=user.username,
        actor_id=user.id,
    )
    body = proposal.to_dict()
    response = _json(body, status=201, etag=proposal.base_version)
    response.headers["Location"] = f"/api/proposals/{proposal.id}"
    return response


@bp.route("/proposals/<int:proposal_id>")
@bp.response(200)
def proposal(proposal_id: int) -> Response:
    """A stored proposal: status, counts, changes, and whether the plan moved on (``stale``)."""
    body = load_proposal(db.conn(), proposal_id)
    return _json(body, etag=body["base_version"])


IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": r'^(W/)?("[0-9]{1,9}"|[0-9]{1,9})$'},
    "example": '"3"',
    "description": "The plan version you reviewed: the ETag of the proposal or plan, one "
    'version of 1 to 9 digits, quoted as an ETag ("3"). 428 without it, 422 when malformed, '
    "409 when the plan has moved on.",
}


def _reviewed_version() -> int:
    """The plan version in If-Match: 428 without one, 422 when it is not one version."""
    raw = request.headers.get("If-Match", "")
    if not raw.strip():
        abort(428, description="send If-Match with the plan version (ETag) you reviewed")
    tags = list(request.if_match.as_set(include_weak=True))
    if len(tags) != 1 or not re.fullmatch(r"[0-9]{1,9}", str(tags[0] or "")):
        raise InputRejected(
            'header If-Match: expected one plan version such as "3"',
            [Reject("header", None, "If-Match", "expected one quoted plan version", raw[:40])],
        )
    return int(tags[0])


def _decide(proposal_id: int, accept: bool, reason: str) -> dict[str, Any]:
    user = current_user()
    require(user, plan=True)
    if accept:
        outcome = pairing.accept_proposal(
            db.conn(),
            proposal_id,
            expected_version=_reviewed_version(),
            decided_by=user.username,
            actor_id=user.id,
            reason=reason,
        )
    else:
        outcome = pairing.reject_proposal(
            db.conn(), proposal_id, decided_by=user.username, actor_id=user.id, reason=reason
        )
    return outcome.to_dict()


@bp.route("/proposals/<int:proposal_id>/accept", methods=["POST"])
@bp.arguments(schemas.DecisionArgs)
@bp.doc(parameters=[IF_MATCH])
@bp.response(200)
def accept(args: dict[str, Any], proposal_id: int) -> Response:
    """Accept a proposal: a new plan version, in one transaction.

    If-Match is the plan version you reviewed: 428 without it, 409 when the plan changed since
    (the proposal is stale, or another planner accepted first). The ETag is the new version.
    """
    body = _decide(proposal_id, True, args["reason"])
    return _json(body, etag=body["version"])


@bp.route("/proposals/<int:proposal_id>/reject", methods=["POST"])
@bp.arguments(schemas.DecisionArgs)
@bp.response(200)
def reject(args: dict[str, Any], proposal_id: int) -> dict[str, Any]:
    """Reject a proposal (the plan is unchanged)."""
    return _decide(proposal_id, False, args["reason"])
