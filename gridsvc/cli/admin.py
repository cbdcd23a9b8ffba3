"""Administration commands: ``gridsvc db init`` and ``gridsvc demo``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from gridsvc.cli._common import get_engine, get_settings
from gridsvc.db import init_database
from gridsvc.settings import Settings

#: Where ``gridsvc demo`` keeps the passwords it made (mode 0600, ignored by git).
DEMO_USERS_FILE = ".gridsvc-demo-users"


@click.group()
def db() -> None:
    """Create and migrate the database."""


@db.command("init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the database and PostGIS when missing, then apply every migration.

    Safe to run again: it only does what is missing.
    """
    settings = get_settings(ctx)
    created = init_database(settings.database_url)
    if settings.app_db_password:
        from gridsvc.accounts.scope import set_app_password
        from gridsvc.db import make_engine

        engine = make_engine(settings.database_url)
        with engine.begin() as conn:
            set_app_password(conn, settings.app_db_password)
        engine.dispose()
    name = make_url(settings.database_url).database
    click.echo(f"database {name}: {'created and ' if created else ''}migrated to the latest schema")


@click.command()
@click.option("--seed", default=1, show_default=True, help="Random seed: same seed, same street.")
@click.option(
    "--households",
    type=click.IntRange(min=100),
    default=None,
    help="Total households; more than one street's worth builds a whole city. "
    "Default: one street of 5 communities (~18,600 households).",
)
@click.option("--kunming", is_flag=True, help="Load the small real-footprint Kunming district.")
@click.option(
    "--users",
    is_flag=True,
    help="Also create the demo logins when missing (make demo does): demo (admin) and viewer "
    "(viewer of the first street). Passwords: GRIDSVC_DEMO_ADMIN_PASSWORD / "
    "GRIDSVC_DEMO_VIEWER_PASSWORD, else random ones, printed once and written to --users-file.",
)
@click.option(
    "--contacts",
    is_flag=True,
    help="After pairing (make demo does): six months of contacts for the current pairs, and the "
    "logins member and cadre (a paired member and their cadre). Passwords: "
    "GRIDSVC_DEMO_MEMBER_PASSWORD / GRIDSVC_DEMO_CADRE_PASSWORD, else random, as for --users.",
)
@click.option(
    "--users-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEMO_USERS_FILE,
    show_default=True,
    help="Where random demo passwords are written (readable by you only).",
)
@click.option(
    "--address-rosters",
    is_flag=True,
    help="Load households and members the way communities keep them: generated address "
    "rosters (住户信息表, 党员花名册; XLSX) imported through the address matcher.",
)
@click.option(
    "--rosters-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --address-rosters: keep the generated roster files in this folder.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    seed: int,
    households: int | None,
    kunming: bool,
    users: bool,
    contacts: bool,
    users_file: Path,
    address_rosters: bool,
    rosters_dir: Path | None,
) -> None:
    """Generate and load a deterministic demo district (running it again updates it by code)."""
    from geodata.demo import load_demo
    from geodata.kunming import load_kunming

    engine = get_engine(ctx)
    if contacts:
        _demo_contacts(engine, get_settings(ctx), users_file)
        return
    with engine.begin() as conn:
        if kunming:
            summary = load_kunming(conn, progress=True)
        else:
            summary = load_demo(
                conn,
                seed=seed,
                households=households,
                progress=True,
                address_rosters=address_rosters,
                settings=get_settings(ctx),
                rosters_dir=rosters_dir,
            )
    for layer, count in summary.items():
        click.echo(f"{layer:12s} {count:>9,d}")
    if users:
        with engine.begin() as conn:
            made = _demo_users(conn, get_settings(ctx))
        if made:
            _keep_passwords(users_file, made)
            for name, secret in made.items():
                click.echo(f"password of {name}: {secret}")
            click.echo(f"demo passwords written to {users_file} (mode 0600); not shown again")


def _demo_users(conn: Connection, settings: Settings) -> dict[str, str]:
    """Create the missing demo logins; the random passwords made, by user name."""
    from gridsvc.accounts.manage import add_user
    from gridsvc.cli.web import _existing

    street = conn.scalar(text("SELECT min(code) FROM streets"))
    wanted = (
        ("demo", "admin", None, settings.demo_admin_password),
        ("viewer", "viewer", street, settings.demo_viewer_password),
    )
    made = {}
    for name, role, street_code, given in wanted:
        if _existing(conn, name, given or None):
            continue
        secret = given or secrets.token_urlsafe(16)
        add_user(
            conn,
            None,
            name,
            secret,
            role=role,
            street_code=street_code,
            min_password_length=settings.password_min_length,
        )
        click.echo(f"user {name} ({role}, scope {street_code or 'all'})")
        if not given:
            made[name] = secret
    return made


def _demo_contacts(engine: object, settings: Settings, users_file: Path) -> None:
    """Demo contacts for the current pairs and the logins member and cadre."""
    from geodata.demo import load_demo_contacts

    with engine.begin() as conn:  # type: ignore[attr-defined]
        made = load_demo_contacts(
            conn,
            contact_days=settings.contact_days,
            vulnerable_days=settings.contact_days_vulnerable,
        )
        click.echo(f"contacts {made:>9,d}" if made else "contacts: demo contacts already loaded")
        secrets_made = _person_users(conn, settings)
    if secrets_made:
        _keep_passwords(users_file, secrets_made)
        for name, secret in secrets_made.items():
            click.echo(f"password of {name}: {secret}")
        click.echo(f"demo passwords written to {users_file} (mode 0600); not shown again")


def _person_users(conn: Connection, settings: Settings) -> dict[str, str]:
    """The logins ``member`` (a paired member of the first community, with a cadre and some
    households overdue) and ``cadre`` (that member's cadre), when missing."""
    from gridsvc.accounts import audit
    from gridsvc.accounts.users import create_user
    from gridsvc.cli.web import _existing

    pick = _demo_person(conn, settings)
    if pick is None:
        click.echo("no pairs yet: run gridsvc pair first for the member and cadre logins")
        return {}
    made = {}
    for name, role, given, keyword in (
        ("member", "member", settings.demo_member_password, {"member_code": pick[0]}),
        ("cadre", "cadre", settings.demo_cadre_password, {"cadre_code": pick[1]}),
    ):
        if _existing(conn, name, given or None):
            continue
        secret = given or secrets.token_urlsafe(16)
        user = create_user(conn, name, secret, role=role, **keyword)
        audit.record(conn, "user_add", username="cli", target=name, after=user.to_dict())
        click.echo(f"user {name} ({role} {next(iter(keyword.values()))})")
        if not given:
            made[name] = secret
    return made


def _demo_person(conn: Connection, settings: Settings) -> tuple[str, str] | None:
    """A member of the first community with a community cadre whose households are mostly but
    not all contacted within cadence (the pages then show both), and that cadre."""
    from gridsvc.contacts.cadence import contact_status, member_figures

    first = conn.scalar(text("SELECT min(community_id) FROM current_household_pairs"))
    if first is None:
        return None
    figures = member_figures(contact_status(conn, [first], settings=settings))
    rows = conn.execute(
        text(
            "SELECT m.code AS member, c.code AS cadre FROM current_member_pairs mp "
            "JOIN members m ON m.id = mp.member_id JOIN cadres c ON c.id = mp.cadre_id "
            "WHERE c.community_id IS NOT NULL AND m.code = ANY(:codes)"
        ),
        {"codes": figures["member"].tolist()},
    ).all()
    cadre_of = {r.member: r.cadre for r in rows}
    figures = figures[figures["member"].isin(cadre_of)]
    if figures.empty:
        return None
    figures = figures.assign(fit=(figures["contacted_share"] - 0.75).abs())
    best = figures.sort_values(["fit", "households", "member"], ascending=[True, False, True])
    member = best.iloc[0]["member"]
    return str(member), cadre_of[member]


def _keep_passwords(path: Path, made: dict[str, str]) -> None:
    """Write ``name<TAB>password`` lines to ``path`` (mode 0600), keeping other users' lines."""
    kept = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, secret = line.partition("\t")
            if secret and not name.startswith("#"):
                kept[name] = secret
    kept.update(made)
    lines = ["# gridsvc demo logins: user<TAB>password (made by gridsvc demo)"]
    lines += [f"{name}\t{secret}" for name, secret in kept.items()]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may have had wider rights
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
