"""web + pairing: scoped policies with a planner check, data-version triggers; merges every head

Revision ID: 0005_web_pairing
Revises: 0002_pairing, 0003_siting, 0004_web
Create Date: 2026-11-26

``0002_pairing`` gave the pairing tables forced row-level security by community. This revision
makes them match the web service's scheme and closes what it left open:

- The app role READS the rows of its scope (``app.street`` / ``app.community`` / ``app.all``) and
  WRITES them only when the transaction's user may plan (``app.plan``, set by ``apply_scope`` for
  planners and admins), so a viewer cannot change pairings even with SQL of its own.
- Member→cadre pairs, unpaired and reserve rows of a street-wide run show only the members (and
  cadres) of the reader's scope, not the whole street's.
- The views read with the caller's rights (``security_invoker``); grants for the app role.
- Data version: what readers cache (the current pairs) changes only when a ``plans`` row does,
  so ``plans``, ``proposals`` and ``pair_controls`` bump ``data_version`` at COMMIT (deferred
  row triggers: the single counter row is locked only for the commit, not for the whole solve),
  and UPDATE/DELETE/TRUNCATE of stored runs bump it at once, like the base tables (0004). Inserting
  a new run's pairs does not: nothing reads them until a plan points at them.
"""

from __future__ import annotations

from alembic import op

revision = "0005_web_pairing"
down_revision = ("0002_pairing", "0003_siting", "0004_web")
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"

RUNS = "run_id IN (SELECT id FROM pairing_runs)"
COMMUNITY = "community_id IN (SELECT id FROM communities)"
#: Table → rows the app role may read (its scope). Writes also need ``gridsvc_scope_plan()``.
SCOPES: dict[str, str] = {
    "pairing_runs": f"{COMMUNITY} "
    "OR (community_id IS NULL AND street_id IN (SELECT id FROM streets))",
    "household_pairs": RUNS,
    "member_pairs": f"{RUNS} AND member_id IN (SELECT id FROM members)",
    "pairing_unpaired": f"{RUNS} AND (household_id IN (SELECT id FROM households) "
    "OR member_id IN (SELECT id FROM members))",
    "pairing_reserve": f"{RUNS} AND (member_id IN (SELECT id FROM members) "
    "OR cadre_id IN (SELECT id FROM cadres))",
    "plans": COMMUNITY,
    "proposals": COMMUNITY,
    "pair_controls": "member_id IN (SELECT id FROM members)",
}
#: The policies of 0002 (restored by the downgrade).
OLD_SCOPES: dict[str, str] = {
    **dict.fromkeys(
        ("household_pairs", "member_pairs", "pairing_unpaired", "pairing_reserve"), RUNS
    ),
    "pairing_runs": SCOPES["pairing_runs"],
    "plans": COMMUNITY,
    "proposals": COMMUNITY,
    "pair_controls": SCOPES["pair_controls"],
}
AT_COMMIT = ("plans", "proposals", "pair_controls")
AT_ONCE = ("pairing_runs", "household_pairs", "member_pairs", "pairing_unpaired", "pairing_reserve")
VIEWS = ("current_household_pairs", "current_member_pairs")
#: Separate policies per command, so reads are filtered by the scope alone (one subquery).
POLICIES = ("app_read", "app_insert", "app_update", "app_delete")

PLAN_FUNCTION = """
CREATE OR REPLACE FUNCTION gridsvc_scope_plan() RETURNS boolean LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('app.plan', true), '') = 'on' $$
"""


def upgrade() -> None:
    op.execute(PLAN_FUNCTION)
    for table, qual in SCOPES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for name in ("app_scope", *POLICIES, "maintenance"):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        write = f"({qual}) AND gridsvc_scope_plan()"
        for name, command, using, check in (
            ("app_read", "SELECT", qual, None),
            ("app_insert", "INSERT", None, write),
            ("app_update", "UPDATE", write, write),
            ("app_delete", "DELETE", write, None),
        ):
            op.execute(
                f"CREATE POLICY {name} ON {table} FOR {command} TO {APP_ROLE}"
                + (f" USING ({using})" if using else "")
                + (f" WITH CHECK ({check})" if check else "")
            )
        _maintenance(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    for view in VIEWS:
        op.execute(f"ALTER VIEW {view} SET (security_invoker = true)")
        op.execute(f"GRANT SELECT ON {view} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION gridsvc_scope_plan() TO {APP_ROLE}")
    for table in AT_COMMIT:
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "EXECUTE FUNCTION gridsvc_bump_data_version()"
        )
    for table in AT_ONCE:
        op.execute(
            f"CREATE TRIGGER {table}_data_version AFTER UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_bump_data_version()"
        )


def _maintenance(table: str) -> None:
    """The owner (CLI, migrations, worker) keeps every row of ``table``."""
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$"
    )


def downgrade() -> None:
    for table in (*AT_COMMIT, *AT_ONCE):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    for table, qual in OLD_SCOPES.items():
        for name in POLICIES:
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(
            f"CREATE POLICY app_scope ON {table} TO {APP_ROLE} USING ({qual}) WITH CHECK ({qual})"
        )
    op.execute("DROP FUNCTION IF EXISTS gridsvc_scope_plan()")
