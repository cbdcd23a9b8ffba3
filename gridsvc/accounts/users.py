"""Users with a role and a scope (a street, a community, or all).

Roles: viewer, planner, admin, and the persons of the red network: ``member`` and ``cadre``,
each bound to one record (``member_id`` / ``cadre_id``) whose community (or street) is the scope;
row-level security narrows a person further to their own households and people (0010).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gridsvc.accounts.passwords import hash_password, password_problems, verify_password
from gridsvc.errors import Conflict, Forbidden, InputRejected, NotFound, Reject

ROLES = ("viewer", "planner", "admin", "member", "cadre")
#: Roles bound to one member or cadre record.
PERSON_ROLES = ("member", "cadre")
#: A user name: it appears in URLs (``/api/users/<name>``) and in the audit log.
USERNAME = re.compile(r"[\w.@-]{1,64}")
#: Default of GRIDSVC_PASSWORD_MIN_LENGTH.
MIN_PASSWORD = 10

_SELECT = (
    "SELECT u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active, "
    "u.session_version, u.password_hash, s.code AS street_code, c.code AS community_code, "
    "coalesce(c.name, s.name) AS scope_name, "
    "coalesce(c.street_id, u.street_id) AS home_street_id, u.member_id, u.cadre_id "
    "FROM users u LEFT JOIN streets s ON s.id = u.street_id "
    "LEFT JOIN communities c ON c.id = u.community_id "
)


@dataclass(frozen=True)
class User:
    """A user as the app sees them (never the password hash)."""

    id: int
    username: str
    role: str
    street_id: int | None
    community_id: int | None
    street_code: str | None
    community_code: str | None
    lang: str
    active: bool
    session_version: int
    member_id: int | None = None
    cadre_id: int | None = None
    #: The name of the user's community or street (None for all, or not yet looked up).
    scope_name: str | None = None

    @property
    def is_person(self) -> bool:
        """A member or cadre: sees only their own households and people."""
        return self.role in PERSON_ROLES

    @property
    def scope_level(self) -> str:
        """``community``, ``street`` or ``all`` (an admin without a scope)."""
        if self.community_id is not None:
            return "community"
        return "street" if self.street_id is not None else "all"

    @property
    def scope_code(self) -> str | None:
        """The code of the user's street or community (None for all)."""
        return self.community_code or self.street_code

    @property
    def can_plan(self) -> bool:
        """Planners and admins may change pairings in their scope."""
        return self.role in ("planner", "admin")

    @property
    def is_admin(self) -> bool:
        """Admins manage users and data."""
        return self.role == "admin"

    def to_dict(self) -> dict[str, object]:
        """Public description (for ``/api/me`` and the user list)."""
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "scope": {"level": self.scope_level, "code": self.scope_code},
            "lang": self.lang,
            "active": self.active,
        }


def _user(row: object) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        street_id=row.street_id,
        community_id=row.community_id,
        street_code=row.street_code,
        community_code=row.community_code,
        lang=row.lang,
        active=row.active,
        session_version=row.session_version,
        member_id=row.member_id,
        cadre_id=row.cadre_id,
        scope_name=row.scope_name,
    )


def get_user(conn: Connection, user_id: int) -> User | None:
    """The user with ``user_id``, or None."""
    row = conn.execute(text(_SELECT + "WHERE u.id = :i"), {"i": user_id}).first()
    return _user(row) if row else None


def find_user(conn: Connection, username: str) -> User:
    """The user called ``username``; raise NotFound naming it."""
    row = conn.execute(text(_SELECT + "WHERE u.username = :n"), {"n": username}).first()
    if row is None:
        raise NotFound(f"user {username!r}: no such user")
    return _user(row)


def list_users(conn: Connection) -> list[User]:
    """Every user the connection may see (the app role: its scope's, for an admin), by name."""
    return [_user(r) for r in conn.execute(text(_SELECT + "ORDER BY u.username"))]


def password_matches(conn: Connection, username: str, password: str) -> bool:
    """Whether ``password`` is the user's (no login is recorded)."""
    stored = conn.scalar(
        text("SELECT password_hash FROM users WHERE username = :n"), {"n": username}
    )
    return stored is not None and verify_password(stored, password)[0]


def end_sessions(conn: Connection, user_id: int) -> None:
    """Invalidate every session cookie issued to the user so far (logout)."""
    conn.execute(
        text("UPDATE users SET session_version = session_version + 1 WHERE id = :i"),
        {"i": user_id},
    )


def generate_password() -> str:
    """A random password for bootstrapped users (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def create_user(
    conn: Connection,
    username: str,
    password: str,
    *,
    role: str,
    street_code: str | None = None,
    community_code: str | None = None,
    lang: str = "zh",
    min_password_length: int = MIN_PASSWORD,
    member_code: str | None = None,
    cadre_code: str | None = None,
) -> User:
    """Create a user; a viewer or planner needs a street or a community (no audit entry:
    :func:`gridsvc.accounts.manage.add_user` is the service that checks the actor and audits).

    A ``member`` needs ``member_code`` and a ``cadre`` ``cadre_code`` (and no street or
    community: their scope is their record's).

    Raises
    ------
    InputRejected
        Bad role, language, a password the policy refuses, both or no scope for a non-admin.
    NotFound
        The street or community code does not exist.
    Conflict
        The username is taken.
    """
    problems = _check_new_user(username, password, role, street_code, community_code, lang)
    problems += password_rejects(password, username=username, min_length=min_password_length)
    problems = [p for p in problems if not (role in PERSON_ROLES and p.field == "scope")]
    problems += _check_binding(role, street_code, community_code, member_code, cadre_code)
    if problems:
        raise InputRejected(f"user {username!r}: {problems[0].reason}", problems)
    street_id = _id_of(conn, "streets", street_code) if street_code else None
    community_id = _id_of(conn, "communities", community_code) if community_code else None
    member_id = cadre_id = None
    if role in PERSON_ROLES:
        member_id, cadre_id, street_id, community_id = _binding(conn, member_code, cadre_code)
    if conn.scalar(text("SELECT 1 FROM users WHERE username = :n"), {"n": username}):
        raise Conflict(f"user {username!r}: the username is taken")
    user_id = conn.scalar(
        text(
            "INSERT INTO users (username, password_hash, role, street_id, community_id, lang, "
            "member_id, cadre_id) VALUES (:n, :h, :r, :s, :c, :l, :m, :cd) RETURNING id"
        ),
        {
            "n": username,
            "h": hash_password(password),
            "r": role,
            "s": street_id,
            "c": community_id,
            "l": lang,
            "m": member_id,
            "cd": cadre_id,
        },
    )
    user = get_user(conn, user_id)
    assert user is not None
    return user


def _check_new_user(
    username: str,
    password: str,
    role: str,
    street_code: str | None,
    community_code: str | None,
    lang: str,
) -> list[Reject]:
    def bad(field: str, reason: str, value: str | None = None) -> Reject:
        return Reject("user", None, field, reason, value)

    problems = []
    if not USERNAME.fullmatch(username):
        problems.append(
            bad("username", "1 to 64 letters, digits or . _ - @ (no spaces, no /)", username)
        )
    if role not in ROLES:
        problems.append(bad("role", f"expected one of {', '.join(ROLES)}", role))
    if street_code and community_code:
        problems.append(bad("scope", "give a street or a community, not both"))
    if role != "admin" and not (street_code or community_code):
        problems.append(bad("scope", f"a {role} needs a street or a community"))
    if lang not in ("zh", "en"):
        problems.append(bad("lang", "expected zh or en", lang))
    return problems


def password_rejects(password: str, *, username: str, min_length: int) -> list[Reject]:
    """The password policy's objections as rejects of field ``password`` (never the value)."""
    problems = password_problems(password, username=username, min_length=min_length)
    return [Reject("user", None, "password", reason) for reason in problems]


def _check_binding(
    role: str,
    street_code: str | None,
    community_code: str | None,
    member_code: str | None,
    cadre_code: str | None,
) -> list[Reject]:
    def bad(field: str, reason: str, value: str | None = None) -> Reject:
        return Reject("user", None, field, reason, value)

    problems = []
    if role == "member" and not member_code:
        problems.append(bad("member_code", "a member user needs --member CODE"))
    if role == "cadre" and not cadre_code:
        problems.append(bad("cadre_code", "a cadre user needs --cadre CODE"))
    if role != "member" and member_code:
        problems.append(bad("member_code", f"only a member user is bound to a member ({role})"))
    if role != "cadre" and cadre_code:
        problems.append(bad("cadre_code", f"only a cadre user is bound to a cadre ({role})"))
    if role in PERSON_ROLES and (street_code or community_code):
        problems.append(bad("scope", f"a {role}'s scope is their record's: give no street"))
    return problems


def _binding(
    conn: Connection, member_code: str | None, cadre_code: str | None
) -> tuple[int | None, int | None, int | None, int | None]:
    """(member_id, cadre_id, street_id, community_id) of a person user's record."""
    table, code = ("members", member_code) if member_code else ("cadres", cadre_code)
    kind = table[:-1]
    street = "NULL::integer" if table == "members" else "street_id"
    row = conn.execute(
        text(f"SELECT id, {street} AS street_id, community_id FROM {table} WHERE code = :c"),
        {"c": code},
    ).first()
    if row is None:
        raise NotFound(f"{kind} {code!r}: no such {kind} code")
    if row.community_id is None and row.street_id is None:
        raise InputRejected(
            f"{kind} {code!r}: has no community",
            [Reject("user", None, f"{kind}_code", "the record has no community", code)],
        )
    taken = conn.scalar(text(f"SELECT username FROM users WHERE {kind}_id = :i"), {"i": row.id})
    if taken:
        raise Conflict(f"{kind} {code!r}: already bound to user {taken!r}")
    community_id = row.community_id
    street_id = None if community_id is not None else row.street_id
    if table == "members":
        return row.id, None, street_id, community_id
    return None, row.id, street_id, community_id


def _id_of(conn: Connection, table: str, code: str) -> int:
    found = conn.scalar(text(f"SELECT id FROM {table} WHERE code = :c"), {"c": code})
    if found is None:
        kind = "street" if table == "streets" else "community"
        raise NotFound(f"{kind} {code!r}: no such {kind} code")
    return int(found)


def require(user: User, *, plan: bool = False, admin: bool = False) -> None:
    """Raise Forbidden when ``user`` lacks the planner or admin role."""
    if admin and not user.is_admin:
        raise Forbidden(f"user {user.username!r} (role {user.role}) is not an admin")
    if plan and not user.can_plan:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not change pairings")
