"""members and cadres as users (person scope), the append-only contact log, contact cadence

Revision ID: 0010_contacts
Revises: 0009_addresses
Create Date: 2026-12-07

- ``users`` gains the roles ``member`` and ``cadre``, each bound to one record (``member_id`` /
  ``cadre_id``); their street or community scope is the record's.
- A person scope (``app.member`` / ``app.cadre``, set per transaction by ``apply_scope``) narrows
  what the app role reads through RESTRICTIVE policies added to the scope policies of 0004/0005:
  a member reads only the households currently paired with them, their own member row and their
  cadre; a cadre reads their members, those members' households and their own row. Persons
  write none of the base or pairing tables, and read no proposals and no jobs. The id sets come
  from SECURITY DEFINER functions (owned by the migrating role), which read the current plans
  without recursing into the policies that call them.
- ``contacts``: append-only (no UPDATE/DELETE for anyone: a trigger refuses them); a correction
  is a new row whose ``supersedes`` names the row it replaces (one correction per row).
- ``contact_last``: the last effective contact of each household, kept by a statement trigger on
  ``contacts`` (a correction recomputes its household): the overdue list of "now" joins one row
  per household instead of probing the log.
- Contact cadence overrides on ``streets`` and ``communities`` (NULL: the settings).
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0010_contacts"
down_revision = "0009_addresses"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"
CHANNELS = ("visit", "phone", "wechat", "other")

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_scope_member() RETURNS integer LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('app.member', true), '')::integer $$;
CREATE OR REPLACE FUNCTION gridsvc_scope_cadre() RETURNS integer LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('app.cadre', true), '')::integer $$;
CREATE OR REPLACE FUNCTION gridsvc_scope_person() RETURNS boolean LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('app.member', true), '') <> ''
          OR coalesce(current_setting('app.cadre', true), '') <> '' $$;
CREATE OR REPLACE FUNCTION gridsvc_person_member_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20 SET search_path = public, pg_temp
AS $$ BEGIN
  -- plpgsql, not sql: the plan is cached per session (a SECURITY DEFINER sql function is
  -- planned again at every call); ROWS: a person has few members and households, so the
  -- planner walks the (run_id, member_id) index instead of hashing every household.
  RETURN QUERY
  SELECT gridsvc_scope_member() WHERE gridsvc_scope_member() IS NOT NULL
  UNION
  SELECT mp.member_id FROM plans p
  JOIN member_pairs mp ON mp.run_id = p.member_run_id
  JOIN members m ON m.id = mp.member_id AND m.community_id = p.community_id
  WHERE mp.cadre_id = gridsvc_scope_cadre();
END $$;
CREATE OR REPLACE FUNCTION gridsvc_person_household_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 200 SET search_path = public, pg_temp
AS $$ BEGIN
  RETURN QUERY
  SELECT hp.household_id FROM plans p
  JOIN household_pairs hp ON hp.run_id = p.household_run_id
  JOIN households h ON h.id = hp.household_id AND h.community_id = p.community_id
  WHERE hp.member_id IN (SELECT gridsvc_person_member_ids());
END $$;
CREATE OR REPLACE FUNCTION gridsvc_person_cadre_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 2 SET search_path = public, pg_temp
AS $$ BEGIN
  RETURN QUERY
  SELECT gridsvc_scope_cadre() WHERE gridsvc_scope_cadre() IS NOT NULL
  UNION
  SELECT mp.cadre_id FROM plans p
  JOIN member_pairs mp ON mp.run_id = p.member_run_id
  JOIN members m ON m.id = mp.member_id AND m.community_id = p.community_id
  WHERE mp.member_id = gridsvc_scope_member();
END $$;
CREATE OR REPLACE FUNCTION gridsvc_refuse_contact_change() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN
  -- A statement on contacts is refused; the cascade of removing its household, member or
  -- user from the base data (a foreign-key action, one trigger level down) is not.
  IF pg_trigger_depth() > 1 THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'contacts is append-only: % refused (a correction is a new row)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""

NOT_PERSON = "NOT gridsvc_scope_person()"
#: Table -> the rows a person (member or cadre) may read.
PERSON_READ: dict[str, str] = {
    "households": "id IN (SELECT gridsvc_person_household_ids())",
    "members": "id IN (SELECT gridsvc_person_member_ids())",
    "cadres": "id IN (SELECT gridsvc_person_cadre_ids())",
    "buildings": "id IN (SELECT building_id FROM households) "
    "OR id IN (SELECT building_id FROM members)",
    "household_pairs": "household_id IN (SELECT gridsvc_person_household_ids())",
    "member_pairs": "member_id IN (SELECT gridsvc_person_member_ids())",
    "pairing_unpaired": "false",
    "pairing_reserve": "member_id IN (SELECT gridsvc_person_member_ids())",
    "proposals": "false",
    "jobs": "false",
    "pair_controls": "false",
}
CONTACT_SCOPE = (
    "community_id IN (SELECT id FROM communities) "
    "AND (NOT gridsvc_scope_person() OR household_id IN (SELECT gridsvc_person_household_ids()))"
)


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for fn in ("member", "cadre", "person"):
        op.execute(f"GRANT EXECUTE ON FUNCTION gridsvc_scope_{fn}() TO {APP_ROLE}")
    for fn in ("member", "household", "cadre"):
        op.execute(f"GRANT EXECUTE ON FUNCTION gridsvc_person_{fn}_ids() TO {APP_ROLE}")
    # A person's households: the pairs of a run by member (the primary key leads with household).
    op.create_index("ix_household_pairs_run_member", "household_pairs", ["run_id", "member_id"])
    _users()
    _credentials()
    _cadence_columns()
    _contacts()
    for table, qual in PERSON_READ.items():
        op.execute(
            f"CREATE POLICY person_read ON {table} AS RESTRICTIVE FOR SELECT TO {APP_ROLE} "
            f"USING ({NOT_PERSON} OR {qual})"
        )
        for command in ("INSERT", "UPDATE", "DELETE"):
            clause = "WITH CHECK" if command == "INSERT" else "USING"
            op.execute(
                f"CREATE POLICY person_{command.lower()} ON {table} AS RESTRICTIVE "
                f"FOR {command} TO {APP_ROLE} {clause} ({NOT_PERSON})"
            )


# A person's binding is part of who they are: the credential lookups (0008) return it, and only an
# admin may change it on a user row.
CREDENTIALS = """
DROP FUNCTION gridsvc_session_user(integer, integer);
CREATE FUNCTION gridsvc_session_user(p_user integer, p_version integer)
RETURNS TABLE (id integer, username text, role text, street_id integer, community_id integer,
               lang text, active boolean, session_version integer, member_id integer,
               cadre_id integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active,
             u.session_version, u.member_id, u.cadre_id
      FROM users u WHERE u.id = p_user AND u.session_version = p_version AND u.active $$;

DROP FUNCTION gridsvc_token_user(text);
CREATE FUNCTION gridsvc_token_user(p_hash text)
RETURNS TABLE (id integer, username text, role text, street_id integer, community_id integer,
               lang text, active boolean, session_version integer, member_id integer,
               cadre_id integer, token_id integer, stale boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active,
             u.session_version, u.member_id, u.cadre_id, t.id,
             t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'
      FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = p_hash AND t.revoked_at IS NULL AND u.active $$;

CREATE OR REPLACE FUNCTION gridsvc_users_guard() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN
  IF current_user = 'gridsvc_app' AND NOT gridsvc_scope_admin() AND (
      NEW.username, NEW.role, NEW.street_id, NEW.community_id, NEW.active, NEW.member_id,
      NEW.cadre_id)
      IS DISTINCT FROM (OLD.username, OLD.role, OLD.street_id, OLD.community_id, OLD.active,
      OLD.member_id, OLD.cadre_id) THEN
    RAISE EXCEPTION 'users: only an admin changes a user''s name, role, scope or state'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
"""


def _credentials() -> None:
    op.execute(CREDENTIALS)
    for signature in ("gridsvc_session_user(integer, integer)", "gridsvc_token_user(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def _users() -> None:
    op.add_column(
        "users",
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="CASCADE")),
    )
    op.add_column(
        "users",
        sa.Column("cadre_id", sa.Integer(), sa.ForeignKey("cadres.id", ondelete="CASCADE")),
    )
    op.create_index("ix_users_member_id", "users", ["member_id"], unique=True)
    op.create_index("ix_users_cadre_id", "users", ["cadre_id"], unique=True)
    op.drop_constraint("ck_users_role", "users", type_="check")
    op.create_check_constraint(
        "ck_users_role", "users", "role IN ('viewer', 'planner', 'admin', 'member', 'cadre')"
    )
    op.create_check_constraint(
        "ck_users_person_bound",
        "users",
        "(role = 'member') = (member_id IS NOT NULL) AND (role = 'cadre') = (cadre_id IS NOT NULL)",
    )


def _cadence_columns() -> None:
    for table in ("streets", "communities"):
        for column in ("contact_days", "contact_days_vulnerable"):
            op.add_column(table, sa.Column(column, sa.Integer()))
            op.create_check_constraint(f"ck_{table}_{column}", table, f"{column} > 0")


def _contacts() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "household_id",
            sa.Integer(),
            sa.ForeignKey("households.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="SET NULL")),
        sa.Column("cadre_id", sa.Integer(), sa.ForeignKey("cadres.id", ondelete="SET NULL")),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
        ),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("source", sa.Text(), nullable=False, server_default="app"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("supersedes", sa.BigInteger(), sa.ForeignKey("contacts.id")),
        sa.CheckConstraint(
            "channel IN ({})".format(", ".join(f"'{c}'" for c in CHANNELS)),
            name="ck_contacts_channel",
        ),
        sa.CheckConstraint("length(note) <= 2000", name="ck_contacts_note_length"),
        sa.CheckConstraint("source IN ('app', 'import', 'demo')", name="ck_contacts_source"),
    )
    op.create_index("ix_contacts_household_at", "contacts", ["household_id", "contacted_at"])
    op.create_index("ix_contacts_member_at", "contacts", ["member_id", "contacted_at"])
    op.create_index("ix_contacts_community_at", "contacts", ["community_id", "contacted_at"])
    op.execute(
        "CREATE UNIQUE INDEX ux_contacts_supersedes ON contacts (supersedes) "
        "WHERE supersedes IS NOT NULL"
    )
    op.execute(
        "CREATE TRIGGER contacts_append_only BEFORE UPDATE OR DELETE ON contacts "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_refuse_contact_change()"
    )
    op.execute(
        "CREATE TRIGGER contacts_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON contacts FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_bump_data_version()"
    )
    op.execute("ALTER TABLE contacts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE contacts FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY app_read ON contacts FOR SELECT TO {APP_ROLE} USING ({CONTACT_SCOPE})"
    )
    op.execute(
        f"CREATE POLICY app_insert ON contacts FOR INSERT TO {APP_ROLE} "
        f"WITH CHECK ({CONTACT_SCOPE})"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON contacts TO %I "
        "USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON contacts FROM {APP_ROLE}, PUBLIC")
    op.execute(f"GRANT SELECT, INSERT ON contacts TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE contacts_id_seq TO {APP_ROLE}")
    _contact_last()


LAST_FUNCTION = """
CREATE OR REPLACE FUNCTION gridsvc_contact_last() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO contact_last (household_id, community_id, last_at)
  SELECT household_id, min(community_id), max(contacted_at) FROM new_rows
  WHERE supersedes IS NULL GROUP BY household_id
  ON CONFLICT (household_id) DO UPDATE
    SET last_at = greatest(contact_last.last_at, excluded.last_at);
  IF EXISTS (SELECT 1 FROM new_rows WHERE supersedes IS NOT NULL) THEN
    INSERT INTO contact_last (household_id, community_id, last_at)
    SELECT c.household_id, min(c.community_id), max(c.contacted_at) FROM contacts c
    WHERE c.household_id IN (SELECT household_id FROM new_rows WHERE supersedes IS NOT NULL)
      AND c.id NOT IN (SELECT supersedes FROM contacts WHERE supersedes IS NOT NULL)
    GROUP BY c.household_id
    ON CONFLICT (household_id) DO UPDATE SET last_at = excluded.last_at;
  END IF;
  RETURN NULL;
END $$;
"""


def _contact_last() -> None:
    op.create_table(
        "contact_last",
        sa.Column(
            "household_id",
            sa.Integer(),
            sa.ForeignKey("households.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(LAST_FUNCTION)
    op.execute(
        "CREATE TRIGGER contacts_last AFTER INSERT ON contacts REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_contact_last()"
    )
    op.execute("ALTER TABLE contact_last ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE contact_last FORCE ROW LEVEL SECURITY")
    scope = CONTACT_SCOPE
    op.execute(f"CREATE POLICY app_read ON contact_last FOR SELECT TO {APP_ROLE} USING ({scope})")
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON contact_last TO %I "
        "USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON contact_last FROM {APP_ROLE}, PUBLIC")
    op.execute(f"GRANT SELECT ON contact_last TO {APP_ROLE}")


def downgrade() -> None:
    import importlib

    accounts = importlib.import_module("gridsvc.migrations.versions.0008_accounts_security")
    op.execute("DROP FUNCTION gridsvc_session_user(integer, integer)")
    op.execute("DROP FUNCTION gridsvc_token_user(text)")
    op.execute(accounts.FUNCTIONS)
    for signature in ("gridsvc_session_user(integer, integer)", "gridsvc_token_user(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")
    for table in PERSON_READ:
        for name in ("person_read", "person_insert", "person_update", "person_delete"):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    op.drop_table("contact_last")
    op.drop_table("contacts")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_contact_last()")
    op.drop_index("ix_household_pairs_run_member", "household_pairs")
    for table in ("streets", "communities"):
        for column in ("contact_days", "contact_days_vulnerable"):
            op.drop_column(table, column)
    op.drop_constraint("ck_users_person_bound", "users", type_="check")
    op.execute("DELETE FROM users WHERE role IN ('member', 'cadre')")
    op.drop_constraint("ck_users_role", "users", type_="check")
    op.create_check_constraint("ck_users_role", "users", "role IN ('viewer', 'planner', 'admin')")
    op.drop_column("users", "cadre_id")
    op.drop_column("users", "member_id")
    for fn in (
        "gridsvc_refuse_contact_change()",
        "gridsvc_person_cadre_ids()",
        "gridsvc_person_household_ids()",
        "gridsvc_person_member_ids()",
        "gridsvc_scope_person()",
        "gridsvc_scope_cadre()",
        "gridsvc_scope_member()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
