"""Who is calling: the credential checked and the scope set in a request's first statement.

A credential is an API token or a session cookie's user id and session version. The first time a
process sees one it looks the user up (:func:`lookup_sql`), sets the scope and reads the user's
codes. After that it keeps the user in a :class:`CallerCache` and opens each request with one
statement (:func:`confirm_sql`) that returns a row, and sets the user's scope, only while the
database still holds the credential and that very user row (same role, scope, language and
session version, still active; token not revoked). Any change makes it return no row and no
scope: the caller is then looked up again. Revocation and logout take effect on the next request.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import Connection, text

from gridsvc.accounts.scope import scope_sql
from gridsvc.accounts.tokens import PREFIX, _digest
from gridsvc.accounts.users import User

_COLUMNS = (
    "u.id, u.username, u.role, u.street_id, u.community_id, u.lang, u.active, u.session_version, "
    "u.member_id, u.cadre_id"
)
# Before the request knows its user it has no scope and row-level security shows it no user:
# SECURITY DEFINER functions (0008) return just the row the credential names.
_BY_TOKEN = ", u.token_id, u.stale FROM gridsvc_token_user(%(token)s) u WHERE true"
_BY_SESSION = " FROM gridsvc_session_user(%(user_id)s, %(version)s) u WHERE true"
_SAME_USER = (
    " AND u.id = %(id)s AND u.username = %(username)s AND u.role = %(role)s"
    " AND u.street_id IS NOT DISTINCT FROM %(street_id)s::integer"
    " AND u.community_id IS NOT DISTINCT FROM %(community_id)s::integer"
    " AND u.lang = %(lang)s AND u.session_version = %(session_version)s"
    " AND u.member_id IS NOT DISTINCT FROM %(member_id)s::integer"
    " AND u.cadre_id IS NOT DISTINCT FROM %(cadre_id)s::integer"
)


@dataclass(frozen=True)
class Credential:
    """What a request presents: an API token, or a session's user id and session version."""

    token: str | None = None
    user_id: int | None = None
    version: int | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """The cache key (a token's SHA-256, never the token itself)."""
        if self.token is not None:
            return ("token", _digest(self.token))
        return ("session", self.user_id, self.version)

    def params(self) -> dict[str, Any]:
        """Parameters of the credential's WHERE clause."""
        if self.token is not None:
            return {"token": _digest(self.token)}
        return {"user_id": self.user_id, "version": self.version}

    @property
    def valid_form(self) -> bool:
        """Whether it is worth a database lookup at all."""
        if self.token is not None:
            return self.token.startswith(PREFIX) and len(self.token) <= 200
        return self.user_id is not None and self.version is not None


def lookup_sql(credential: Credential) -> tuple[str, dict[str, Any]]:
    """The credential's active user (no codes, no scope set): SQL and parameters."""
    where = _BY_TOKEN if credential.token is not None else _BY_SESSION
    return "SELECT " + _COLUMNS + where, credential.params()


def confirm_sql(credential: Credential, user: User) -> tuple[str, dict[str, Any]]:
    """One row, setting ``user``'s scope, only while the credential still belongs to ``user``
    unchanged; no row and no scope otherwise. SQL and parameters."""
    items, scope = scope_sql(user)
    where = _BY_TOKEN if credential.token is not None else _BY_SESSION
    same = {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "street_id": user.street_id,
        "community_id": user.community_id,
        "lang": user.lang,
        "session_version": user.session_version,
        "member_id": user.member_id,
        "cadre_id": user.cadre_id,
    }
    sql = "SELECT " + _COLUMNS + ", " + items + where + _SAME_USER
    return sql, {**credential.params(), **scope, **same}


def user_of(row: Any) -> User:
    """The user of a :func:`lookup_sql` row (codes unknown: they need the scope set)."""
    fields = ("id", "username", "role", "street_id", "community_id", "lang", "active")
    fields += ("member_id", "cadre_id")
    return User(
        **{name: getattr(row, name) for name in fields},
        session_version=row.session_version,
        street_code=None,
        community_code=None,
    )


def touch_token(conn: Connection, token_id: int) -> None:
    """Note a token's use (callers do it at most once a minute: a write costs a WAL flush)."""
    conn.execute(text("UPDATE api_tokens SET last_used_at = now() WHERE id = :i"), {"i": token_id})


class CallerCache:
    """Users by credential, least recently used dropped first; safe across threads.

    Holds no authority: every request confirms its entry against the database (see module).
    """

    def __init__(self, size: int = 1024) -> None:
        self._users: OrderedDict[tuple[object, ...], User] = OrderedDict()
        self._lock = Lock()
        self._size = size

    def get(self, credential: Credential) -> User | None:
        """The user last seen with this credential, or None."""
        with self._lock:
            user = self._users.get(credential.key)
            if user is not None:
                self._users.move_to_end(credential.key)
            return user

    def put(self, credential: Credential, user: User | None) -> None:
        """Remember (or with None, forget) the credential's user."""
        with self._lock:
            if user is None:
                self._users.pop(credential.key, None)
                return
            self._users[credential.key] = user
            while len(self._users) > self._size:
                self._users.popitem(last=False)
