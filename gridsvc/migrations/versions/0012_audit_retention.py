"""audit_log: deletable only by `gridsvc audit prune`, and never younger than 180 days

Revision ID: 0012_audit_retention
Revises: 0011_procrastinate_schema
Create Date: 2026-12-07

The append-only trigger of ``0004_web`` refused every UPDATE and DELETE. It now lets a DELETE
through only when the deleting transaction declared a cutoff (``set_config(
'gridsvc.audit_prune_before', ..., true)``, which ``gridsvc audit prune`` does), the cutoff is at
least 180 days in the past and the entry is older than the cutoff. UPDATE and TRUNCATE stay
refused; the app role still has no DELETE privilege at all.
"""

from __future__ import annotations

from alembic import op

revision = "0012_audit_retention"
down_revision = "0011_procrastinate_schema"
branch_labels = None
depends_on = None

GUARD = """
CREATE OR REPLACE FUNCTION gridsvc_audit_log_guard() RETURNS trigger LANGUAGE plpgsql
AS $$
DECLARE
  cutoff timestamptz := nullif(current_setting('gridsvc.audit_prune_before', true), '')::timestamptz;
BEGIN
  IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <= now() - interval '180 days'
     AND OLD.at < cutoff THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.execute(GUARD)
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_audit_log_guard()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_refuse_change()"
    )
    op.execute("DROP FUNCTION gridsvc_audit_log_guard()")
