"""person scope: a person's ids by index walks, whatever the statistics; buildings by a function

Revision ID: 0015_member_page
Revises: 0014_requests
Create Date: 2026-12-07

Row-level security calls ``gridsvc_person_household_ids()`` once per table of a statement (the
member's page reads five such tables). Its one statement joined the pairs to every household
of the database by hash (a member's 24 households: 4 ms a call, a seq scan of all households)
whenever the planner had no statistics (small tables such as ``plans`` are rarely analysed;
autovacuum may be off). The functions now walk the person's pairs of the current runs by index
and check each pair's household (member) in its plan's community by primary key: the same rows,
about 0.2 ms for a member's 24 households, and no plan that depends on statistics.

The person read policy of ``buildings`` (the buildings of the person's households and members)
was two subqueries over ``households`` and ``members`` under their own row-level security: a
scan of every household of the scope at each statement. It now calls
``gridsvc_person_building_ids()``, the same set from the person's ids by primary key.
"""

from __future__ import annotations

from alembic import op

revision = "0015_member_page"
down_revision = "0014_requests"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_person_member_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20 SET search_path = public, pg_temp
AS $$
DECLARE
  member integer := gridsvc_scope_member();
  cadre integer := gridsvc_scope_cadre();
  runs integer[];
  pair record;
BEGIN
  -- The member themself; a cadre's members of the current member runs, each checked to be
  -- in its plan's community by primary key (no join whose plan depends on statistics).
  IF member IS NOT NULL THEN
    RETURN NEXT member;
  END IF;
  IF cadre IS NULL THEN
    RETURN;
  END IF;
  runs := array(SELECT p.member_run_id FROM plans p WHERE p.member_run_id IS NOT NULL);
  FOR pair IN
    SELECT mp.run_id, mp.member_id FROM member_pairs mp
    WHERE mp.cadre_id = cadre AND mp.run_id = ANY(runs)
  LOOP
    IF pair.member_id IS DISTINCT FROM member AND EXISTS (
      SELECT FROM members m JOIN plans p ON p.community_id = m.community_id
      WHERE m.id = pair.member_id AND p.member_run_id = pair.run_id
    ) THEN
      RETURN NEXT pair.member_id;
    END IF;
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION gridsvc_person_household_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 200 SET search_path = public, pg_temp
AS $$
DECLARE
  runs integer[] := array(
    SELECT p.household_run_id FROM plans p WHERE p.household_run_id IS NOT NULL
  );
  member integer;
  pair record;
BEGIN
  -- Per member: their pairs of the current household runs (index on member_id), each kept
  -- when its household is in the community of a plan that uses the run (primary keys).
  FOR member IN SELECT gridsvc_person_member_ids() LOOP
    FOR pair IN
      SELECT hp.run_id, hp.household_id FROM household_pairs hp
      WHERE hp.member_id = member AND hp.run_id = ANY(runs)
    LOOP
      IF EXISTS (
        SELECT FROM households h JOIN plans p ON p.community_id = h.community_id
        WHERE h.id = pair.household_id AND p.household_run_id = pair.run_id
      ) THEN
        RETURN NEXT pair.household_id;
      END IF;
    END LOOP;
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION gridsvc_person_building_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20 SET search_path = public, pg_temp
AS $$ BEGIN
  -- The buildings of the person's households and of their members, by primary key.
  RETURN QUERY
  SELECT h.building_id FROM households h
  WHERE h.id = ANY(array(SELECT gridsvc_person_household_ids())) AND h.building_id IS NOT NULL
  UNION
  SELECT m.building_id FROM members m
  WHERE m.id = ANY(array(SELECT gridsvc_person_member_ids())) AND m.building_id IS NOT NULL;
END $$;
"""

# The definitions of 0010_contacts, for the downgrade.
OLD_FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_person_member_ids() RETURNS SETOF integer
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20 SET search_path = public, pg_temp
AS $$ BEGIN
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
"""

BUILDINGS_READ = "id IN (SELECT gridsvc_person_building_ids())"
OLD_BUILDINGS_READ = (
    "id IN (SELECT building_id FROM households) OR id IN (SELECT building_id FROM members)"
)


def _buildings_policy(qual: str) -> None:
    op.execute("DROP POLICY person_read ON buildings")
    op.execute(
        f"CREATE POLICY person_read ON buildings AS RESTRICTIVE FOR SELECT TO {APP_ROLE} "
        f"USING (NOT gridsvc_scope_person() OR {qual})"
    )


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute(f"GRANT EXECUTE ON FUNCTION gridsvc_person_building_ids() TO {APP_ROLE}")
    _buildings_policy(BUILDINGS_READ)


def downgrade() -> None:
    _buildings_policy(OLD_BUILDINGS_READ)
    op.execute("DROP FUNCTION gridsvc_person_building_ids()")
    op.execute(OLD_FUNCTIONS)
