"""Managing users: create, disable and enable, reset and change passwords, issue and revoke tokens.

Every function is a service: it checks that the actor may act on the user and writes its own
audit entry. ``actor`` None is the command line (the database owner; audited as ``cli``).

An admin manages only users inside its scope: a street admin its street's users and those of
its communities, a community admin its community's; a user without a scope (an unscoped admin)
only an unscoped admin. The database enforces the same rule (row-level security, 0008): to the
app role a user outside the scope does not exist, so a name from another scope answers 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gridsvc.accounts import audit, tokens
from gridsvc.accounts.passwords import hash_password, verify_password
from gridsvc.accounts.users import (
    MIN_PASSWORD,
    User,
    create_user,
    find_user,
    generate_password,
    get_user,
    password_rejects,
)
from gridsvc.errors import Forbidden, InputRejected, NotFound, Reject


def _street_of_community(conn: Connection, community_id: int) -> int | None:
    return conn.scalar(text("SELECT street_id FROM communities WHERE id = :c"), {"c": community_id})


def check_manages(conn: Connection, actor: User | None, target: User) -> None:
    """Raise Forbidden unless ``actor`` may manage ``target`` (see the module docstring)."""
    if actor is None:
        return
    if not actor.is_admin:
        raise Forbidden(f"user {actor.username!r} (role {actor.role}) is not an admin")
    if actor.scope_level == "all":
        return
    if target.scope_level == "all":
        raise Forbidden(
            f"user {target.username!r} has no scope (all): only an admin without a scope "
            f"manages it, not {actor.username!r} (scope {actor.scope_code})"
        )
    if actor.scope_level == "community":
        inside = target.community_id == actor.community_id
    elif target.community_id is not None:
        inside = _street_of_community(conn, target.community_id) == actor.street_id
    else:
        inside = target.street_id == actor.street_id
    if not inside:
        raise Forbidden(
            f"user {target.username!r} (scope {target.scope_code}) is outside the scope "
            f"{actor.scope_code} of {actor.username!r}"
        )


def _record(conn: Connection, action: str, actor: User | None, target: User, **extra: Any) -> None:
    audit.record(
        conn,
        action,
        user=actor,
        username=None if actor else "cli",
        target=target.username,
        street_id=target.street_id,
        community_id=target.community_id,
        **extra,
    )


def add_user(
    conn: Connection,
    actor: User | None,
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
    ip: str | None = None,
) -> User:
    """Create a user inside the actor's scope (a scoped admin gives a scope: never 'all').

    A member or cadre user takes the scope of their record (``member_code`` / ``cadre_code``):
    it is checked against the actor's once the record is resolved, before commit.
    """
    if member_code or cadre_code:
        _check_new_scope(conn, actor, username, None, None, person=True)
    else:
        _check_new_scope(conn, actor, username, street_code, community_code)
    created = create_user(
        conn,
        username,
        password,
        role=role,
        street_code=street_code,
        community_code=community_code,
        lang=lang,
        min_password_length=min_password_length,
        member_code=member_code,
        cadre_code=cadre_code,
    )
    check_manages(conn, actor, created)  # before commit: a refusal rolls the insert back
    _record(conn, "user_add", actor, created, after=created.to_dict(), ip=ip)
    return created


def _check_new_scope(
    conn: Connection,
    actor: User | None,
    username: str,
    street_code: str | None,
    community_code: str | None,
    *,
    person: bool = False,
) -> None:
    """Forbidden unless a user of this scope would be inside the actor's (before any insert)."""
    if actor is None:
        return
    if not actor.is_admin:
        raise Forbidden(f"user {actor.username!r} (role {actor.role}) is not an admin")
    if actor.scope_level == "all" or person:
        return
    if street_code and community_code:
        return  # create_user rejects both, naming the field
    if actor.scope_level == "community":
        inside = street_code is None and community_code == actor.community_code
    elif community_code:
        street = conn.scalar(
            text(
                "SELECT s.code FROM communities c JOIN streets s ON s.id = c.street_id "
                "WHERE c.code = :c"
            ),
            {"c": community_code},
        )
        inside = street == actor.street_code
    else:
        inside = street_code == actor.street_code
    if not inside:
        wanted = community_code or street_code or "all"
        raise Forbidden(
            f"user {username!r}: scope {wanted} is outside the scope {actor.scope_code} of "
            f"{actor.username!r} (an admin creates users of its own scope only)"
        )


def managed_user(conn: Connection, actor: User | None, username: str) -> User:
    """The user ``username`` when ``actor`` may manage it (404 when invisible, else 403)."""
    target = find_user(conn, username)
    check_manages(conn, actor, target)
    return target


def set_active(
    conn: Connection, actor: User | None, username: str, active: bool, *, ip: str | None = None
) -> User:
    """Disable (sessions and tokens stop at once) or enable a user; an admin not itself."""
    target = managed_user(conn, actor, username)
    if actor is not None and target.id == actor.id and not active:
        raise Forbidden(f"user {username!r}: an admin cannot disable itself")
    conn.execute(
        text(
            "UPDATE users SET active = :a, session_version = session_version "
            "+ CASE WHEN :a THEN 0 ELSE 1 END WHERE id = :i"
        ),
        {"a": active, "i": target.id},
    )
    _record(
        conn,
        "user_enable" if active else "user_disable",
        actor,
        target,
        before={"active": target.active},
        after={"active": active},
        ip=ip,
    )
    if active:
        conn.execute(text("SELECT gridsvc_login_reset(:n)"), {"n": target.username})
    found = get_user(conn, target.id)
    assert found is not None
    return found


def reset_password(
    conn: Connection,
    actor: User | None,
    username: str,
    password: str | None = None,
    *,
    min_password_length: int = MIN_PASSWORD,
    ip: str | None = None,
) -> str:
    """Give another user a new password (random when None; returned once), end its sessions
    and lift a lockout."""
    target = managed_user(conn, actor, username)
    secret = password or generate_password()
    rejects = password_rejects(secret, username=target.username, min_length=min_password_length)
    if rejects:
        raise InputRejected(f"user {username!r}: {rejects[0].reason}", rejects)
    _set_password(conn, target.id, secret)
    conn.execute(text("SELECT gridsvc_login_reset(:n)"), {"n": target.username})
    _record(conn, "password_reset", actor, target, ip=ip)
    return secret


def change_own_password(
    conn: Connection,
    user: User,
    current: str,
    new: str,
    *,
    min_password_length: int = MIN_PASSWORD,
    ip: str | None = None,
) -> User:
    """Change the caller's own password (the current one required); ends its other sessions.

    Returns the user with its new session version (the caller's session is renewed with it).
    """
    stored = conn.scalar(text("SELECT password_hash FROM users WHERE id = :i"), {"i": user.id})
    if not verify_password(stored, current)[0]:
        raise Forbidden(f"user {user.username!r}: the current password is wrong")
    rejects = password_rejects(new, username=user.username, min_length=min_password_length)
    if new == current:
        rejects.append(Reject("user", None, "password", "the new password is the current one"))
    if rejects:
        raise InputRejected(f"user {user.username!r}: {rejects[0].reason}", rejects)
    _set_password(conn, user.id, new)
    _record(conn, "password_change", user, user, ip=ip)
    found = get_user(conn, user.id)
    assert found is not None
    return found


def _set_password(conn: Connection, user_id: int, password: str) -> None:
    conn.execute(
        text(
            "UPDATE users SET password_hash = :h, session_version = session_version + 1 "
            "WHERE id = :i"
        ),
        {"h": hash_password(password), "i": user_id},
    )


def issue_token(
    conn: Connection, actor: User | None, username: str, name: str, *, ip: str | None = None
) -> tuple[User, str]:
    """A new API token of a user in the actor's scope: (user, token shown once)."""
    target = managed_user(conn, actor, username)
    token = tokens.issue_token(conn, target.id, name)
    _record(conn, "token_issue", actor, target, details={"name": name, "prefix": token[:10]}, ip=ip)
    return target, token


def list_tokens(conn: Connection, actor: User | None, username: str) -> list[dict[str, Any]]:
    """The tokens of a user in the actor's scope (never the secret: its first 10 characters)."""
    target = managed_user(conn, actor, username)
    rows = conn.execute(
        text(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens "
            "WHERE user_id = :u ORDER BY id"
        ),
        {"u": target.id},
    )
    return [
        {
            "id": r.id,
            "name": r.name,
            "prefix": r.prefix,
            "created_at": r.created_at.isoformat(),
            "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]


def revoke_token(
    conn: Connection, actor: User | None, username: str, token_id: int, *, ip: str | None = None
) -> None:
    """Revoke one token of a user in the actor's scope (it stops working at once)."""
    target = managed_user(conn, actor, username)
    revoked = conn.scalar(
        text(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE id = :t AND user_id = :u RETURNING id"
        ),
        {"t": token_id, "u": target.id},
    )
    if revoked is None:
        raise NotFound(f"token {token_id} of user {username!r}: no such token")
    _record(conn, "token_revoke", actor, target, details={"token_id": token_id}, ip=ip)
