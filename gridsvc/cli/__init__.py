"""The ``gridsvc`` command: one click group; each feature registers its commands below."""

from __future__ import annotations

import click

from gridsvc.cli._common import GridsvcGroup
from gridsvc.cli.admin import db, demo
from gridsvc.cli.audit import audit
from gridsvc.cli.contacts import contacts, digest, user_import
from gridsvc.cli.coverage import blindspots, coverage, sites
from gridsvc.cli.data import export, import_
from gridsvc.cli.pairing import COMMANDS as PAIRING_COMMANDS
from gridsvc.cli.report import report
from gridsvc.cli.requests import COMMANDS as REQUEST_COMMANDS
from gridsvc.cli.web import serve, user, worker


@click.group(
    cls=GridsvcGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="gridsvc")
def cli() -> None:
    """gridsvc: grids, pairings, coverage and map reports for street offices, on PostGIS.

    The database is DATABASE_URL or GRIDSVC_DATABASE_URL (default: local PostgreSQL, database
    gridsvc). Exit codes: 0 ok, 1 unexpected failure, 2 usage, 3 input rejected, 4 not found,
    5 conflict, 6 solver failed, 7 forbidden, 8 infeasible settings.
    """


cli.add_command(db)
cli.add_command(demo)
for _command in (serve, worker, user):
    cli.add_command(_command)
for _command in (coverage, blindspots, sites):
    cli.add_command(_command)
cli.add_command(import_)
cli.add_command(contacts)
cli.add_command(digest)
user.add_command(user_import)
cli.add_command(export)
cli.add_command(report)
cli.add_command(audit)
for _command in PAIRING_COMMANDS:
    cli.add_command(_command)
for _command in REQUEST_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``gridsvc`` console script."""
    cli(prog_name="gridsvc")
