"""Web commands: ``gridsvc serve``, ``gridsvc worker`` and ``gridsvc user ...`` (add, list,
token, tokens, revoke, disable, enable, password)."""

from __future__ import annotations

import secrets

import click
from sqlalchemy import Connection

from gridsvc.cli._common import get_engine, get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the web app over plain HTTP with waitress (demo; production runs gunicorn).

    Without GRIDSVC_SECRET_KEY a random key is made (sessions end when the server stops). The
    session cookie is Secure unless GRIDSVC_COOKIE_SECURE=0: over plain HTTP a browser keeps a
    Secure cookie only from localhost, so a plain-HTTP demo (``make demo``) sets it to 0.
    """
    from waitress import serve as waitress_serve

    from gridsvc.web import create_app

    settings = get_settings(ctx)
    key = settings.secret_key or secrets.token_hex(32)
    app = create_app({"GRIDSVC_SETTINGS": settings.with_(secret_key=key)})
    if settings.cookie_secure:
        click.echo(
            "gridsvc: the session cookie is Secure (HTTPS only); for plain HTTP away from "
            "localhost set GRIDSVC_COOKIE_SECURE=0 or serve behind HTTPS",
            err=True,
        )
    click.echo(f"gridsvc: http://{host}:{port}/ (Ctrl-C stops)")
    waitress_serve(app, host=host, port=port, threads=threads)


@click.command()
@click.option("--once", is_flag=True, help="Run the queued jobs, then stop.")
@click.option("--concurrency", default=1, show_default=True, type=int)
@click.pass_context
def worker(ctx: click.Context, once: bool, concurrency: int) -> None:
    """Run background jobs (pairing runs, imports) from the PostgreSQL job queue.

    Start one on every machine that reaches the database to share a city run. Each beats a
    heartbeat; the jobs of a worker silent for GRIDSVC_WORKER_STALLED_S are retried by another.
    """
    # the engine, imported at start rather than in the first job
    import gridsvc.pairing._solve
    import gridsvc.pairing.city  # noqa: F401
    from gridsvc.jobs import make_queue, worker_options

    settings = get_settings(ctx)
    queue = make_queue(settings.database_url, stalled_check_s=settings.stalled_check_s)
    with queue.open():
        queue.run_worker(
            wait=not once,
            concurrency=concurrency,
            install_signal_handlers=True,
            **worker_options(settings),
        )


@click.group()
def user() -> None:
    """Manage users of the web app (admins)."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["viewer", "planner", "admin", "member", "cadre"]), required=True
)
@click.option("--street", "street_code", metavar="CODE")
@click.option("--community", "community_code", metavar="CODE")
@click.option("--member", "member_code", metavar="CODE", help="The member a member user is.")
@click.option("--cadre", "cadre_code", metavar="CODE", help="The cadre a cadre user is.")
@click.option("--password", help="Default: a random one, printed once.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option(
    "--if-missing", is_flag=True, help="Leave an existing user unchanged instead of refusing."
)
@click.pass_context
def user_add(
    ctx: click.Context,
    username: str,
    role: str,
    street_code: str | None,
    community_code: str | None,
    member_code: str | None,
    cadre_code: str | None,
    password: str | None,
    lang: str,
    if_missing: bool,
) -> None:
    """Create a user; a viewer or planner needs --street or --community, a member --member
    CODE, a cadre --cadre CODE (their scope is their record's)."""
    from gridsvc.accounts.manage import add_user
    from gridsvc.accounts.users import generate_password

    secret = password or generate_password()
    with get_engine(ctx).begin() as conn:
        if if_missing and _existing(conn, username, password):
            return
        created = add_user(
            conn,
            None,
            username,
            secret,
            role=role,
            street_code=street_code,
            community_code=community_code,
            lang=lang,
            min_password_length=get_settings(ctx).password_min_length,
            member_code=member_code,
            cadre_code=cadre_code,
        )
    scope = created.scope_code or "all"
    click.echo(f"user {username} ({role}, scope {scope})")
    if password is None:
        click.echo(f"password: {secret}")


def _existing(conn: Connection, username: str, password: str | None) -> bool:
    """Report an existing user (and whether ``password`` is theirs); False when there is none."""
    from gridsvc.accounts.users import find_user, password_matches
    from gridsvc.errors import NotFound

    try:
        found = find_user(conn, username)
    except NotFound:
        return False
    click.echo(
        f"user {username} ({found.role}, scope {found.scope_code or 'all'}): exists, unchanged"
    )
    if password is not None and not password_matches(conn, username, password):
        click.echo(f"user {username}: the password given is not theirs (unchanged)", err=True)
    return True


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List users with role and scope."""
    from gridsvc.accounts.users import list_users

    with get_engine(ctx).connect() as conn:
        for u in list_users(conn):
            state = "" if u.active else " (disabled)"
            click.echo(f"{u.username:20s} {u.role:8s} {u.scope_code or 'all'}{state}")


@user.command("token")
@click.argument("username")
@click.option("--name", default="script", show_default=True)
@click.pass_context
def user_token(ctx: click.Context, username: str, name: str) -> None:
    """Issue an API token (printed once) for scripts: ``Authorization: Bearer <token>``."""
    from gridsvc.accounts.manage import issue_token

    with get_engine(ctx).begin() as conn:
        _, token = issue_token(conn, None, username, name)
    click.echo(token)


@user.command("tokens")
@click.argument("username")
@click.pass_context
def user_tokens(ctx: click.Context, username: str) -> None:
    """List a user's API tokens: id, name, first characters, created, last used, revoked."""
    from gridsvc.accounts.manage import list_tokens

    with get_engine(ctx).connect() as conn:
        for tok in list_tokens(conn, None, username):
            state = f"revoked {tok['revoked_at'][:19]}" if tok["revoked_at"] else "active"
            used = (tok["last_used_at"] or "never")[:19]
            click.echo(
                f"{tok['id']:>6} {tok['name']:20s} {tok['prefix']}… "
                f"created {tok['created_at'][:19]} used {used} {state}"
            )


@user.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
@click.pass_context
def user_revoke(ctx: click.Context, username: str, token_id: int) -> None:
    """Revoke one API token of a user (ids from ``gridsvc user tokens``); it stops at once."""
    from gridsvc.accounts.manage import revoke_token

    with get_engine(ctx).begin() as conn:
        revoke_token(conn, None, username, token_id)
    click.echo(f"user {username}: token {token_id} revoked")


@user.command("disable")
@click.argument("username")
@click.pass_context
def user_disable(ctx: click.Context, username: str) -> None:
    """Disable a user: its sessions and tokens stop working at once."""
    from gridsvc.accounts.manage import set_active

    with get_engine(ctx).begin() as conn:
        set_active(conn, None, username, False)
    click.echo(f"user {username}: disabled")


@user.command("enable")
@click.argument("username")
@click.pass_context
def user_enable(ctx: click.Context, username: str) -> None:
    """Enable a disabled user again (and lift a login lockout)."""
    from gridsvc.accounts.manage import set_active

    with get_engine(ctx).begin() as conn:
        set_active(conn, None, username, True)
    click.echo(f"user {username}: enabled")


@user.command("password")
@click.argument("username")
@click.option(
    "--password",
    "password",
    help="The new password. Default: read it from a prompt (--random: a random one, printed).",
)
@click.option("--random", "random_", is_flag=True, help="Make a random password and print it.")
@click.pass_context
def user_password(ctx: click.Context, username: str, password: str | None, random_: bool) -> None:
    """Set (reset) a user's password: ends its sessions, lifts a lockout."""
    from gridsvc.accounts.manage import reset_password

    if password is None and not random_:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    with get_engine(ctx).begin() as conn:
        secret = reset_password(
            conn,
            None,
            username,
            password,
            min_password_length=get_settings(ctx).password_min_length,
        )
    click.echo(f"user {username}: password set; its sessions ended")
    if random_:
        click.echo(f"password: {secret}")
