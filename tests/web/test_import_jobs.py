"""Large uploads as background import jobs: queue, progress, result, rejects, scope, worker."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from webhelpers import bearer, count, households_csv, owner_engine

from gridsvc.jobs import execute_job

#: Uploads larger than this (40 KiB) are queued by the app of this module.
INLINE_MB = 0.04
ROWS = 1000  # households_csv's default: 52 KiB of CSV


@pytest.fixture(scope="module")
def queue_app(web):
    """The app with a 40 KiB inline limit (no job queue: tests run the jobs themselves)."""
    from gridsvc.web import create_app

    settings = web.settings.with_(import_inline_max_mb=INLINE_MB)
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    yield app
    app.extensions["gridsvc.engine"].dispose()


@pytest.fixture
def qclient(queue_app):
    return queue_app.test_client()


@pytest.fixture
def progress_log(web) -> Iterator[str]:
    """Every progress update of a job row, kept by a trigger (the owner's test table)."""
    engine = owner_engine(web)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE test_job_progress (id serial, job_id int, progress float, message text);"
            "CREATE FUNCTION test_log_progress() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO test_job_progress (job_id, progress, message) "
            "VALUES (NEW.id, NEW.progress, NEW.message); RETURN NULL; END $$;"
            "CREATE TRIGGER test_log_progress AFTER UPDATE OF progress, message ON jobs "
            "FOR EACH ROW EXECUTE FUNCTION test_log_progress()"
        )
    yield "SELECT progress, message FROM test_job_progress WHERE job_id = :j ORDER BY id"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER test_log_progress ON jobs; DROP FUNCTION test_log_progress();"
            "DROP TABLE test_job_progress"
        )
    engine.dispose()


@pytest.fixture
def cleanup(web) -> Iterator[None]:
    """Remove the households the tests load (other tests count street B's)."""
    yield
    engine = owner_engine(web)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM households WHERE code LIKE 'H-JOB-%'"))
    engine.dispose()


def upload(client, web, who: str, body: bytes, name: str = "h.csv", **form: str):
    data = {"layer": "households", "crs": "EPSG:4326", "file": (io.BytesIO(body), name), **form}
    return client.post(
        "/api/imports", data=data, headers=bearer(web, who), content_type="multipart/form-data"
    )


def owner_rows(web, sql: str, **params: object) -> list:
    engine = owner_engine(web)
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return rows


def test_a_large_upload_is_queued_runs_with_progress_and_keeps_its_result(
    qclient, web, progress_log, cleanup
):
    body = households_csv("H-JOB-A")
    assert len(body) > INLINE_MB * 1024 * 1024
    queued = upload(qclient, web, "admin_b", body, name="住户.csv")
    assert queued.status_code == 202, queued.data[:500]
    job_id = queued.get_json()["id"]
    assert queued.get_json()["url"] == f"/api/jobs/{job_id}"
    status = qclient.get(f"/api/jobs/{job_id}", headers=bearer(web, "admin_b")).get_json()
    assert status["status"] == "queued" and status["params"]["bytes"] == len(body)
    stored = owner_rows(web, "SELECT length(payload) FROM jobs WHERE id = :j", j=job_id)
    assert stored[0][0] == len(body)  # the upload waits in the job row
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-JOB-A%'") == 0

    execute_job(web.settings, job_id)

    steps = owner_rows(web, progress_log, j=job_id)
    messages = [m for _, m in steps]
    assert messages[:4] == [
        "reading",
        f"validating: {ROWS:,} records",
        f"loading: {ROWS:,} records",
        f"done: {ROWS:,} records",
    ]
    shares = [p for p, _ in steps]
    assert shares == sorted(shares) and shares[-1] == 1.0
    status = qclient.get(f"/api/jobs/{job_id}", headers=bearer(web, "admin_b")).get_json()
    assert status["status"] == "done", status
    result = status["result"]
    assert (result["inserted"], result["updated"], result["rejected"]) == (ROWS, 0, 0)
    assert result["source"] == "住户.csv" and result["layer"] == "households"
    assert status["has_output"] is False  # the upload is gone, and there are no rejects
    assert owner_rows(web, "SELECT payload FROM jobs WHERE id = :j", j=job_id)[0][0] is None
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-JOB-A%'") == ROWS
    actions = owner_rows(
        web,
        "SELECT action, target, details->>'inserted' FROM audit_log "
        "WHERE target = :t OR details->>'job' = :j ORDER BY id",
        t=f"import job {job_id}",
        j=str(job_id),
    )
    assert [tuple(a) for a in actions] == [
        ("job_start", f"import job {job_id}", None),
        ("import", "households 住户.csv", str(ROWS)),
    ]


def test_bad_records_fail_the_job_with_every_reject_and_load_nothing(qclient, web, cleanup):
    bad = (7, 300, 599)
    queued = upload(qclient, web, "admin_b", households_csv("H-JOB-B", bad=bad))
    assert queued.status_code == 202, queued.data[:500]
    job_id = queued.get_json()["id"]
    execute_job(web.settings, job_id)
    status = qclient.get(f"/api/jobs/{job_id}", headers=bearer(web, "admin_b")).get_json()
    assert status["status"] == "failed"
    assert "3 records rejected, nothing imported" in status["error"]
    result = status["result"]
    assert result["inserted"] == 0 and result["rejected"] == 3
    assert [r["record"] for r in result["rejects"]] == list(bad)
    assert {r["field"] for r in result["rejects"]} == {"building_code"}
    assert all("B-NOPE-9" in (r["value"] or "") + r["reason"] for r in result["rejects"])
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-JOB-B%'") == 0
    logged = owner_rows(
        web, "SELECT rejected, inserted FROM import_log WHERE created_by = 'admin_b' "
        "ORDER BY id DESC LIMIT 1",
    )  # fmt: skip
    assert tuple(logged[0]) == (3, 0)
    assert status["has_output"] is True
    csv = qclient.get(f"/api/jobs/{job_id}/rejects.csv", headers=bearer(web, "admin_b"))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.data.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "source,record,field,reason,value" and len(lines) == 1 + len(bad)
    assert lines[1].startswith("h.csv,7,building_code,")


def test_skip_invalid_loads_the_rest_and_keeps_the_rejects_csv(qclient, web, cleanup):
    queued = upload(qclient, web, "admin_b", households_csv("H-JOB-C", bad=(5,)), skip_invalid="1")
    job_id = queued.get_json()["id"]
    execute_job(web.settings, job_id)
    status = qclient.get(f"/api/jobs/{job_id}", headers=bearer(web, "admin_b")).get_json()
    assert status["status"] == "done", status
    assert (status["result"]["inserted"], status["result"]["rejected"]) == (ROWS - 1, 1)
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-JOB-C%'") == ROWS - 1
    csv = qclient.get(f"/api/jobs/{job_id}/rejects.csv", headers=bearer(web, "admin_b"))
    assert csv.status_code == 200 and csv.data.decode("utf-8-sig").count("\n") == 2


def test_small_uploads_still_import_inline(qclient, web, cleanup):
    response = upload(qclient, web, "admin_b", households_csv("H-JOB-D", rows=3))
    assert response.status_code == 200, response.data[:500]
    assert response.get_json()["inserted"] == 3


def test_only_admins_start_imports_and_jobs_stay_in_their_scope(qclient, web, cleanup):
    body = households_csv("H-JOB-E")
    for who in ("viewer_b", "planner_a"):
        assert upload(qclient, web, who, body).status_code == 403
    unknown = upload(qclient, web, "admin_b", body, layer="nope")
    assert unknown.status_code == 422 and "layer" in unknown.get_json()["message"]
    mine = upload(qclient, web, "admin_b", body).get_json()["id"]
    everyone = upload(qclient, web, "admin", households_csv("H-JOB-F", bad=(1,))).get_json()["id"]
    execute_job(web.settings, mine)
    execute_job(web.settings, everyone)

    def seen(who: str, job_id: int, what: str = "") -> int:
        return qclient.get(f"/api/jobs/{job_id}{what}", headers=bearer(web, who)).status_code

    assert seen("admin_b", mine) == 200 and seen("admin", mine) == 200  # in the admin's scope
    assert seen("viewer_b", mine) == 404 and seen("planner_a", mine) == 404
    assert seen("admin_b", everyone) == 404  # a job of the whole city, outside street B
    assert seen("admin", everyone, "/rejects.csv") == 200
    for who in ("admin_b", "viewer_b", "planner_a"):
        assert seen(who, everyone, "/rejects.csv") == 404
    assert seen("admin_b", mine, "/rejects.csv") == 404  # no rejects: no file
    page = qclient.get(f"/jobs/{everyone}", headers=bearer(web, "admin_b"))
    assert page.status_code == 404


def test_procrastinate_worker_runs_a_queued_import(web, monkeypatch, cleanup):
    """The way ``gridsvc worker`` runs it: defer on the queue, the worker's task, the job."""
    from gridsvc.jobs import make_queue
    from gridsvc.web import create_app

    settings = web.settings.with_(import_inline_max_mb=INLINE_MB)
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": settings})  # defers to the queue
    try:
        queued = upload(app.test_client(), web, "admin_b", households_csv("H-JOB-G"))
    finally:
        app.extensions["gridsvc.engine"].dispose()
    assert queued.status_code == 202, queued.data[:300]
    job_id = queued.get_json()["id"]
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", web.url)  # the worker's task loads its settings
    queue = make_queue(web.url)
    # A thread of its own: the worker runs an event loop, and the browser tests leave one
    # running in this thread.
    worker = threading.Thread(
        target=queue.run_worker, kwargs={"wait": False, "install_signal_handlers": False}
    )
    worker.start()
    worker.join(timeout=120)
    state = owner_rows(web, "SELECT status, result->>'inserted' FROM jobs WHERE id = :j", j=job_id)
    assert tuple(state[0]) == ("done", str(ROWS))
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-JOB-G%'") == ROWS


def test_every_queue_made_in_a_process_knows_the_task():
    """A second queue once renamed the shared task: the web app's second job could not be
    deferred and a worker in the same process could not find the first."""
    from gridsvc.jobs import TASK, make_queue

    for _ in range(3):
        assert TASK in make_queue("postgresql+psycopg://nobody@127.0.0.1/none").tasks
