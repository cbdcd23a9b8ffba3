"""accounts under forced row-level security; login throttling in the database

Revision ID: 0008_accounts_security
Revises: 0007_jobs_rls
Create Date: 2026-12-07

``users``, ``api_tokens`` and ``audit_log`` get ``FORCE ROW LEVEL SECURITY`` scoped like the data:

- ``users``: the app role sees and writes its own row (``app.user``) and, for an admin
  (``app.admin``), the users inside its scope: the scope's street (``street_id``) or any of its
  communities. A user without a scope (an unscoped admin) is visible and writable only with
  ``app.all``. A trigger refuses a non-admin changing its own role, scope, name or state.
- ``api_tokens``: the tokens of the users the role may see.
- ``audit_log``: anyone may append; admins read the entries of their scope (the place recorded
  on the entry, or for an entry without a place, its author).

Before a request knows its user, it has no scope and sees no user: the credential is checked by
three ``SECURITY DEFINER`` functions that return only the row the credential names
(``gridsvc_session_user``, ``gridsvc_token_user``, ``gridsvc_login_user``).

``login_attempts`` keeps login attempts for throttling across processes; the app role cannot read
it, only call ``gridsvc_login_begin`` / ``gridsvc_login_end`` / ``gridsvc_login_reset``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_accounts_security"
down_revision = "0007_jobs_rls"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"

#: A user row inside the current scope (street, community, or everything).
USER_IN_SCOPE = (
    "gridsvc_scope_all() OR street_id = gridsvc_scope_street() "
    "OR community_id IN (SELECT id FROM communities)"
)
USERS = f"id = gridsvc_scope_user() OR (gridsvc_scope_admin() AND ({USER_IN_SCOPE}))"
TOKENS = "user_id IN (SELECT id FROM users)"
AUDIT = (
    "gridsvc_scope_admin() AND (gridsvc_scope_all() "
    "OR community_id IN (SELECT id FROM communities) "
    "OR (community_id IS NULL AND street_id = gridsvc_scope_street()) "
    "OR (community_id IS NULL AND street_id IS NULL AND user_id IN (SELECT id FROM users)))"
)

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_scope_user() RETURNS integer LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('app.user', true), '')::integer $$;
CREATE OR REPLACE FUNCTION gridsvc_scope_admin() RETURNS boolean LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('app.admin', true), '') = 'on' $$;

CREATE OR REPLACE FUNCTION gridsvc_users_guard() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN
  IF current_user = 'gridsvc_app' AND NOT gridsvc_scope_admin() AND (
      NEW.username, NEW.role, NEW.street_id, NEW.community_id, NEW.active)
      IS DISTINCT FROM (OLD.username, OLD.role, OLD.street_id, OLD.community_id, OLD.active) THEN
    RAISE EXCEPTION 'users: only an admin changes a user''s name, role, scope or state'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION gridsvc_session_user(p_user integer, p_version integer)
RETURNS TABLE (id integer, username text, role text, street_id integer, community_id integer,
               lang text, active boolean, session_version integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active,
             u.session_version
      FROM users u WHERE u.id = p_user AND u.session_version = p_version AND u.active $$;

CREATE OR REPLACE FUNCTION gridsvc_token_user(p_hash text)
RETURNS TABLE (id integer, username text, role text, street_id integer, community_id integer,
               lang text, active boolean, session_version integer, token_id integer,
               stale boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active,
             u.session_version, t.id,
             t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'
      FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = p_hash AND t.revoked_at IS NULL AND u.active $$;

CREATE OR REPLACE FUNCTION gridsvc_login_user(p_username text)
RETURNS TABLE (id integer, active boolean, password_hash text, street_id integer,
               community_id integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT u.id, u.active, u.password_hash, u.street_id, u.community_id
      FROM users u WHERE u.username = p_username $$;

-- Throttling. An attempt is counted against its account (lower-cased name, whether or not such a
-- user exists) and its address from the moment it begins (in flight) until it succeeds; an
-- account's count restarts after its last success (or reset). Refused attempts are not counted.
CREATE OR REPLACE FUNCTION gridsvc_login_begin(
    p_username text, p_ip text, p_window_s integer, p_max_account integer,
    p_max_address integer)
RETURNS TABLE (attempt_id bigint, refused text, retry_after integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  v_since timestamptz := now() - make_interval(secs => p_window_s);
  v_oldest timestamptz;
  v_count integer;
  v_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('gridsvc_login:' || lower(p_username)));
  PERFORM pg_advisory_xact_lock(hashtext('gridsvc_login_ip:' || coalesce(p_ip, '')));
  DELETE FROM login_attempts WHERE at < now() - interval '2 days';
  SELECT count(*), min(a.at) INTO v_count, v_oldest FROM login_attempts a
    WHERE a.account = lower(p_username) AND a.at > v_since AND a.ok IS NOT TRUE
      AND a.at > coalesce((SELECT max(s.at) FROM login_attempts s
                           WHERE s.account = lower(p_username) AND s.ok), '-infinity');
  IF v_count >= p_max_account THEN
    RETURN QUERY SELECT NULL::bigint, 'account'::text,
      greatest(1, ceil(extract(epoch FROM v_oldest - v_since)))::integer;
    RETURN;
  END IF;
  SELECT count(*), min(a.at) INTO v_count, v_oldest FROM login_attempts a
    WHERE a.ip IS NOT DISTINCT FROM p_ip AND a.at > v_since AND a.ok IS NOT TRUE;
  IF v_count >= p_max_address THEN
    RETURN QUERY SELECT NULL::bigint, 'address'::text,
      greatest(1, ceil(extract(epoch FROM v_oldest - v_since)))::integer;
    RETURN;
  END IF;
  INSERT INTO login_attempts (account, ip) VALUES (lower(p_username), p_ip)
    RETURNING login_attempts.id INTO v_id;
  RETURN QUERY SELECT v_id, NULL::text, 0;
END $$;

CREATE OR REPLACE FUNCTION gridsvc_login_end(
    p_attempt bigint, p_ok boolean, p_window_s integer)
RETURNS TABLE (account_failures integer, address_failures integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  v_row login_attempts;
  v_since timestamptz := now() - make_interval(secs => p_window_s);
BEGIN
  UPDATE login_attempts SET ok = p_ok WHERE id = p_attempt RETURNING * INTO v_row;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 0, 0;
    RETURN;
  END IF;
  RETURN QUERY SELECT
    (SELECT count(*)::integer FROM login_attempts a
      WHERE a.account = v_row.account AND a.at > v_since AND a.ok IS FALSE
        AND a.at > coalesce((SELECT max(s.at) FROM login_attempts s
                             WHERE s.account = v_row.account AND s.ok), '-infinity')),
    (SELECT count(*)::integer FROM login_attempts a
      WHERE a.ip IS NOT DISTINCT FROM v_row.ip AND a.at > v_since AND a.ok IS FALSE);
END $$;

CREATE OR REPLACE FUNCTION gridsvc_login_reset(p_username text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ INSERT INTO login_attempts (account, ip, ok) VALUES (lower(p_username), NULL, true) $$;
"""

DEFINERS = (
    "gridsvc_session_user(integer, integer)",
    "gridsvc_token_user(text)",
    "gridsvc_login_user(text)",
    "gridsvc_login_begin(text, text, integer, integer, integer)",
    "gridsvc_login_end(bigint, boolean, integer)",
    "gridsvc_login_reset(text)",
)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("ip", sa.Text()),
        sa.Column("ok", sa.Boolean()),
    )
    op.create_index("ix_login_attempts_account", "login_attempts", ["account", "at"])
    op.create_index("ix_login_attempts_ip", "login_attempts", ["ip", "at"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])
    op.execute(FUNCTIONS)
    # The app role reaches the throttle only through its functions (no list of addresses).
    op.execute(f"REVOKE ALL ON login_attempts FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON SEQUENCE login_attempts_id_seq FROM {APP_ROLE}")
    for signature in DEFINERS:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")
    op.execute(
        "CREATE TRIGGER users_guard BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_users_guard()"
    )
    _force("users")
    op.execute(
        f"CREATE POLICY app_scope ON users TO {APP_ROLE} USING ({USERS}) WITH CHECK ({USERS})"
    )
    _force("api_tokens")
    op.execute(
        f"CREATE POLICY app_scope ON api_tokens TO {APP_ROLE} USING ({TOKENS}) WITH CHECK ({TOKENS})"
    )
    _force("audit_log")
    op.execute(f"CREATE POLICY app_read ON audit_log FOR SELECT TO {APP_ROLE} USING ({AUDIT})")
    op.execute(f"CREATE POLICY app_append ON audit_log FOR INSERT TO {APP_ROLE} WITH CHECK (true)")


def _force(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$"
    )


def downgrade() -> None:
    for table, policies in (
        ("users", ("app_scope",)),
        ("api_tokens", ("app_scope",)),
        ("audit_log", ("app_read", "app_append")),
    ):
        for policy in (*policies, "maintenance"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP TRIGGER IF EXISTS users_guard ON users")
    for signature in DEFINERS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_users_guard()")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_scope_admin()")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_scope_user()")
    op.drop_table("login_attempts")
