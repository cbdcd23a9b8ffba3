"""API of background jobs and of the planner's rebalance proposals (ETag / If-Match)."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request
from flask_smorest import Blueprint

from gridsvc import jobs
from gridsvc.accounts import audit
from gridsvc.accounts.users import require
from gridsvc.coverage._data import resolve_scope
from gridsvc.web import db, schemas
from gridsvc.web.auth import current_user

bp = Blueprint("jobs", __name__, url_prefix="/api", description="Background jobs and proposals")


def queue_url() -> str:
    """Where the job queue lives (the app role's database URL)."""
    return str(db.engine().url.render_as_string(hide_password=False))


@bp.route("/jobs", methods=["POST"])
@bp.arguments(schemas.JobArgs)
@bp.response(202)
def start_job(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Queue a pairing run of a street or community (planners); poll ``/api/jobs/<id>``."""
    user = current_user()
    require(user, plan=True)
    connection = db.conn()
    scope = resolve_scope(
        connection, street_code=args.get("street"), community_code=args.get("community")
    )
    job_id = jobs.create_job(
        connection,
        args["kind"],
        user_id=user.id,
        params={
            "street": args.get("street"),
            "community": args.get("community"),
            "username": user.username,
        },
        street_id=int(scope.street_ids[0]) if scope.level == "street" else None,
        community_id=int(scope.community_ids[0]) if scope.level == "community" else None,
    )
    audit.record(connection, "job_start", user=user, target=f"{args['kind']} job {job_id}")
    connection.commit()
    db.rescope()
    if not current_app.config.get("GRIDSVC_NO_QUEUE"):
        jobs.defer_job(queue_url(), job_id)
    return {"id": job_id, "status": "queued", "url": f"/api/jobs/{job_id}"}, 202


@bp.route("/jobs/<int:job_id>")
@bp.response(200)
def job(job_id: int) -> dict[str, Any]:
    """A job's status, progress, result or error (your own jobs; admins see all)."""
    user = current_user()
    return jobs.job_status(db.conn(), job_id, user_id=None if user.is_admin else user.id)


def _pairing_service() -> Any:
    try:
        from gridsvc.pairing import service
    except ImportError:
        abort(503, description="the pairing service (gridsvc.pairing.service) is not installed")
    return service


@bp.route("/plans/<string:community>")
@bp.response(200)
def plan(community: str) -> Any:
    """The community's plan version; the ETag to send as If-Match when accepting."""
    from gridsvc.portal._sql import community_id

    cid = community_id(db.conn(), community)
    version = _pairing_service().plan_version(db.conn(), cid)
    response = current_app.response_class(
        current_app.json.dumps({"community": community, "version": version}),
        mimetype="application/json",
    )
    response.set_etag(str(version))
    return response


@bp.route("/proposals", methods=["POST"])
@bp.arguments(schemas.ProposalArgs)
@bp.response(201)
def propose(args: dict[str, Any]) -> Any:
    """Run a rebalance of a community and keep it as a proposal (planners)."""
    user = current_user()
    require(user, plan=True)
    proposal = _pairing_service().propose_rebalance(
        db.conn(),
        community_code=args["community"],
        settings=db.settings(),
        created_by=user.username,
    )
    body = proposal.to_dict()
    audit.record(
        db.conn(),
        "proposal",
        user=user,
        target=f"proposal {body.get('id')}",
        details={k: body.get(k) for k in ("community", "base_version", "summary")},
    )
    response = current_app.response_class(
        current_app.json.dumps(body), status=201, mimetype="application/json"
    )
    response.set_etag(str(body.get("base_version")))
    return response


def _decide(proposal_id: int, accept: bool, reason: str) -> dict[str, Any]:
    user = current_user()
    require(user, plan=True)
    service = _pairing_service()
    if accept:
        expected = request.if_match.as_set()
        if not expected:
            abort(428, description="send If-Match with the plan version (ETag) you reviewed")
        version = int(next(iter(expected)))
        outcome = service.accept_proposal(
            db.conn(),
            proposal_id,
            expected_version=version,
            decided_by=user.username,
            reason=reason,
        )
    else:
        outcome = service.reject_proposal(
            db.conn(), proposal_id, decided_by=user.username, reason=reason
        )
    body = outcome.to_dict() if hasattr(outcome, "to_dict") else dict(outcome)
    audit.record(
        db.conn(),
        "proposal_accept" if accept else "proposal_reject",
        user=user,
        target=f"proposal {proposal_id}",
        reason=reason,
        before=body.get("before"),
        after=body.get("after"),
        community_id=body.get("community_id"),
    )
    return body


@bp.route("/proposals/<int:proposal_id>/accept", methods=["POST"])
@bp.arguments(schemas.DecisionArgs)
@bp.response(200)
def accept(args: dict[str, Any], proposal_id: int) -> dict[str, Any]:
    """Accept a proposal; 409 when the plan changed since (If-Match is the reviewed version)."""
    return _decide(proposal_id, True, args["reason"])


@bp.route("/proposals/<int:proposal_id>/reject", methods=["POST"])
@bp.arguments(schemas.DecisionArgs)
@bp.response(200)
def reject(args: dict[str, Any], proposal_id: int) -> dict[str, Any]:
    """Reject a proposal."""
    return _decide(proposal_id, False, args["reason"])
