"""The database side of scopes: the app role's URL and ``SET LOCAL`` of a user's scope."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from gridsvc.accounts.users import User
from gridsvc.settings import Settings

APP_ROLE = "gridsvc_app"


def app_database_url(settings: Settings) -> str:
    """The database URL with the ``gridsvc_app`` role (and its password, when set)."""
    url = make_url(settings.database_url).set(
        username=APP_ROLE, password=settings.app_db_password or None
    )
    return url.render_as_string(hide_password=False)


def scope_settings(user: User | None) -> dict[str, str]:
    """The transaction settings that limit rows to the user's scope (all empty when None).

    ``app.street``, ``app.community`` or ``app.all`` name the scope; ``app.plan`` is on for
    planners and admins: only then may the app role write pairing tables (0005). ``app.user`` is
    the user's id (its own row of ``users``) and ``app.admin`` is on for admins: only then does
    the app role see and write the users, tokens and audit entries of the scope (0008).
    ``app.member`` / ``app.cadre`` (a member or cadre user's record id) narrow the scope to that
    person's households and people (0010).
    """
    street = community = every = plan = me = admin = member = cadre = ""
    if user is not None:
        me = str(user.id)
        admin = "on" if user.is_admin else ""
        if user.community_id is not None:
            community = str(user.community_id)
        elif user.street_id is not None:
            street = str(user.street_id)
        else:
            every = "on"
        plan = "on" if user.can_plan else ""
        member = str(user.member_id) if user.member_id is not None else ""
        cadre = str(user.cadre_id) if user.cadre_id is not None else ""
    return {
        "app.street": street,
        "app.community": community,
        "app.all": every,
        "app.plan": plan,
        "app.user": me,
        "app.admin": admin,
        "app.member": member,
        "app.cadre": cadre,
    }


def scope_sql(user: User | None) -> tuple[str, dict[str, str]]:
    """``set_config`` calls (SQL select-list items, psycopg placeholders) and their parameters."""
    values = scope_settings(user)
    items = ", ".join(
        f"set_config('{name}', %(scope{i})s, true) AS scope{i}" for i, name in enumerate(values)
    )
    return items, {f"scope{i}": value for i, value in enumerate(values.values())}


def apply_scope(conn: Connection, user: User | None) -> None:
    """Limit the current transaction's rows to the user's scope (nothing when None).

    Uses ``set_config(..., true)``, the function form of ``SET LOCAL``: the scope ends with the
    transaction, so a pooled connection never carries it to the next request.
    """
    items, params = scope_sql(user)
    conn.exec_driver_sql("SELECT " + items, params)


def set_app_password(conn: Connection, password: str) -> None:
    """Give the app role a login password (``gridsvc db init`` with GRIDSVC_APP_DB_PASSWORD)."""
    from psycopg import sql

    statement = sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}")
    raw = conn.connection.driver_connection
    raw.execute(statement.format(sql.Identifier(APP_ROLE), sql.Literal(password)))
