"""Every setting of gridsvc, read from the environment (prefix ``GRIDSVC_``) in one place.

Nothing else in the code reads ``os.environ``: callers build a :class:`Settings` with
:func:`load_settings` at the edge (CLI, application factory, tests) and pass it down.

Settings
--------
GRIDSVC_DATABASE_URL (or DATABASE_URL)
    SQLAlchemy URL of the PostGIS database. ``postgres://`` and ``postgresql://`` URLs are
    accepted and run over psycopg 3. Default ``postgresql+psycopg://postgres@127.0.0.1:5432/gridsvc``.
GRIDSVC_TEST_DATABASE_URL
    Database the test suite creates and migrates. Default: the main URL with the database name
    suffixed ``_test``.
GRIDSVC_HOUSEHOLD_LOAD
    Default households per member, ``MIN-MAX``. Default ``15-25``. Streets, communities and
    members may carry their own range in the database; the most specific one wins.
GRIDSVC_MEMBER_LOAD
    Default members per cadre, ``MIN-MAX``. Default ``8-15``.
GRIDSVC_GRID_HOUSEHOLDS
    Households a grid should hold, ``MIN-MAX`` (local practice, not a standard). Default
    ``300-500``; used by the demo generator and flagged by coverage.
GRIDSVC_BUILDING_PENALTY_M
    Cost, in metres, added to a pair whose two ends are not in the same building. Default 150.
GRIDSVC_GRID_PENALTY_M
    Cost, in metres, added to a pair whose two ends are not in the same grid. Default 300.
GRIDSVC_MAX_PAIR_DISTANCE_M
    Pairs longer than this are never made; empty for no limit. Default empty.
GRIDSVC_CROSS_COMMUNITY
    ``1`` lets household pairs cross community boundaries. Default ``0``.
GRIDSVC_CHURN_WEIGHT_M
    Rebalancing: cost, in metres, of changing one existing pair. Default 400.
GRIDSVC_FAR_PAIR_M
    Blind spots: a pair longer than this is "far". Default 500.
GRIDSVC_LIFE_CIRCLES_M
    Walking ranges of Red Stations (GB 50180-2018 life circles), comma-separated metres.
    Default ``300,500,1000``.
GRIDSVC_REACH_METRIC
    How Red Station reach (coverage, blind spots, siting) measures distance: ``auto`` walks along
    the roads layer where roads are loaded around the scope and goes straight elsewhere,
    ``straight`` always goes straight, ``network`` always walks (an error where no road is
    loaded). Default ``auto``.
GRIDSVC_ROAD_SNAP_M
    Walking distance: a household, building, station or candidate site farther than this many
    metres from every road is off the network; it reaches, and is reached by, nothing, and is
    counted as such. Default 200.
GRIDSVC_MAX_VERTICES
    Import: polygons with more vertices are rejected before any repair. Default 10000.
GRIDSVC_MAX_NESTING
    Import: JSON nesting deeper than this is rejected. Default 32.
GRIDSVC_MAX_IMPORT_MB
    Import: files larger than this many megabytes are refused before reading. Default 1024.
GRIDSVC_MAX_UNZIPPED_MB
    Import: an archive (zipped Shapefile, XLSX) whose members would decompress to more than
    this many megabytes in all is refused before anything in it is read. Default 1024.
GRIDSVC_MAX_ZIP_RATIO
    Import: an archive member of 1 MB or more that would grow more than this many times when
    decompressed is refused unread (a zip bomb: 1 GiB of zeros deflates about 1,000 times;
    real Shapefile ``.dbf`` and XLSX parts stay well under 100). Default 200.
GRIDSVC_TILES
    Base map of maps and reports: ``none``, ``osm``, ``gaode``, ``tianditu`` or an XYZ URL
    template (an intranet tile server). Default ``none``.
GRIDSVC_TIANDITU_KEY
    ``tk`` key for Tianditu tiles.
GRIDSVC_LANG
    Language of labels in maps, reports and pages: ``zh`` or ``en``. Default ``zh``.
GRIDSVC_TIMEZONE
    IANA time zone of every time shown (pages, audit log, reports, file names) and of times
    given without an offset (contact imports and forms). Default ``Asia/Shanghai`` (Beijing
    time); stored times stay UTC.
GRIDSVC_SECRET_KEY
    Flask secret key. Required by ``gridsvc serve`` outside development.
GRIDSVC_APP_DB_PASSWORD
    Password of the ``gridsvc_app`` database role the web app and worker jobs connect as (set
    on the role by ``gridsvc db init``). Empty: no password (trust/peer authentication).
GRIDSVC_COOKIE_SECURE
    ``1`` marks the session cookie Secure (HTTPS only). Default ``1``. Set ``0`` only to serve
    plain HTTP (``make demo`` does, for its ``gridsvc serve`` step on 127.0.0.1).
GRIDSVC_SESSION_HOURS
    Lifetime of a login session in hours. Default 8.
GRIDSVC_SESSION_IDLE_MINUTES
    A login session unused for this many minutes ends (besides its lifetime). Default 30.
GRIDSVC_LOGIN_MAX_FAILURES
    Failed logins of one account (the name typed) within GRIDSVC_LOGIN_WINDOW_MINUTES that lock
    it until the oldest of them is that old; a good login or a password reset restarts the
    count. Default 5.
GRIDSVC_LOGIN_MAX_PER_ADDRESS
    Failed or unfinished logins from one client address within the window after which that
    address is refused, whatever the names tried. Default 20.
GRIDSVC_LOGIN_WINDOW_MINUTES
    The throttling window of both limits, in minutes. Default 15.
GRIDSVC_PASSWORD_MIN_LENGTH
    Shortest password accepted for new passwords (the policy also refuses blank ones, common
    ones and ones containing the user name). Default 10.
GRIDSVC_MAX_UPLOAD_MB
    Largest request body (uploads) the web app accepts, in megabytes. Default 50.
GRIDSVC_IMPORT_INLINE_MAX_MB
    Web uploads up to this many megabytes import within the request; larger ones go to the
    background job queue (``gridsvc worker``), with progress on the job page. Default 2: about
    15,000 households of CSV, 3 s (a 2.5 MB file of 18,620 took 3.4-3.9 s on 2 busy cores, ten
    times that 28 s and 570 MB); 0 queues every upload.
GRIDSVC_ID_NUMBERS
    What an import does with a 身份证号 column: ``hash`` keeps a keyed hash (HMAC-SHA256 under a
    key derived from GRIDSVC_SECRET_KEY, required then) used only to find the same person in the
    next import; ``drop`` leaves the column out. The number itself is never stored. Default
    ``hash``.
GRIDSVC_ADDRESS_FUZZY_MIN
    Address matching: a compound name that matches no compound exactly or normalised is taken
    as the closest one only when their similarity (0-1, rapidfuzz ratio of the normalised names)
    is at least this. Default 0.85.
GRIDSVC_ADDRESS_FUZZY_MARGIN
    ... and only when the closest stands this far (0-1) above the next candidate; otherwise the
    record is rejected as ambiguous, naming both. Default 0.1.
GRIDSVC_DEMO_ADMIN_PASSWORD, GRIDSVC_DEMO_VIEWER_PASSWORD
    Passwords ``gridsvc demo --users`` gives the demo logins ``demo`` (admin) and ``viewer``
    when it creates them (``make demo DEMO_ADMIN_PASSWORD=...`` sets them). Empty (the
    default): random ones, printed once and written to ``.gridsvc-demo-users`` (mode 0600).
GRIDSVC_DEMO_MEMBER_PASSWORD, GRIDSVC_DEMO_CADRE_PASSWORD
    The same for the logins ``member`` and ``cadre`` that ``gridsvc demo --contacts`` creates
    (a paired member of the demo street and their cadre) after pairing.
GRIDSVC_WORKERS
    Processes ``gridsvc pair`` uses for a scope of more than one community (each community is
    solved and committed on its own; one process each, with its own database connection).
    Default: the number of CPU cores; 1 solves in the command's own process.
GRIDSVC_WORKER_HEARTBEAT_S
    Seconds between a ``gridsvc worker``'s heartbeats in the job queue. Default 5.
GRIDSVC_WORKER_STALLED_S
    A worker whose last heartbeat is older than this many seconds is taken for dead (killed,
    machine lost): its running jobs are put back on the queue for another worker (an import
    job is failed and its uploaded file dropped: upload it again). Default 30.
GRIDSVC_STALLED_CHECK_S
    Seconds between two looks for such stalled jobs (a periodic task every worker may run;
    1-59). Default 10. A dead worker's job is back on the queue within about
    GRIDSVC_WORKER_STALLED_S + GRIDSVC_STALLED_CHECK_S seconds.
GRIDSVC_FOLLOW_S
    Seconds between two looks of a queued city pairing run at its per-community jobs (it then
    starts the street level of streets whose communities are done). Default 1.
GRIDSVC_AUDIT_RETENTION_DAYS
    Days the audit log keeps every entry. ``gridsvc audit prune`` deletes entries older than
    this and nothing else; nothing prunes on its own. At least 180 (a smaller value is refused,
    and the database itself refuses to delete an entry younger than 180 days). Default 365.
GRIDSVC_CONTACT_DAYS
    Cadence: every paired household is due a contact every this many days. Default 30. Streets
    and communities may carry their own (``contact_days``); the community's wins.
GRIDSVC_CONTACT_DAYS_VULNERABLE
    Cadence of vulnerable households (elderly living alone, disabled, low income, children).
    Default 7; per street and community as ``contact_days_vulnerable``.
GRIDSVC_CONTACT_MAX_AGE_DAYS
    A contact older than this many days is refused (history from before the import is welcome).
    Default 730.
GRIDSVC_CONTACT_CHURN_M
    Rebalancing: extra cost, in metres, of moving a pair for each of its contacts in the last
    90 days (at most 10 contacts count). Default 100.
GRIDSVC_MEMBER_OPEN_REQUESTS_MAX
    Residents' requests (issue 11): a member holds at most this many open requests (dispatched,
    accepted, in progress); beyond it a request goes to the nearest member with room. Default 3.
GRIDSVC_REQUEST_ACCEPT_DAYS
    A dispatched request not accepted within this many days is escalated (升级). Default 1.
GRIDSVC_REQUEST_FINISH_DAYS
    A request not finished within this many days of its creation is escalated. Default 7.
GRIDSVC_REQUEST_LIMITS
    Per-category time limits overriding the two above, ``category:accept/finish`` separated by
    commas (``repair:1/3,mediation:1/14``). Default empty.
GRIDSVC_WISH_OPEN_DAYS
    A micro-wish (微心愿) unclaimed this many days after publication is also shown to the street's
    units (单位认领). Default 14.
GRIDSVC_MEMBER_OPEN_WISHES_MAX
    A member holds at most this many claimed, unfulfilled wishes. Default 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gridsvc"
#: Values of ``GRIDSVC_REACH_METRIC``.
REACH_METRICS = ("auto", "straight", "network")
#: The audit log keeps at least this many days (enforced again by a trigger on ``audit_log``).
AUDIT_RETENTION_FLOOR_DAYS = 180


@dataclass(frozen=True)
class LoadRange:
    """An inclusive range of loads (households per member, members per cadre)."""

    min: int
    max: int

    @classmethod
    def parse(cls, text: str, *, name: str = "range") -> LoadRange:
        """Parse ``"15-25"``; raise ``ValueError`` naming the setting when malformed."""
        try:
            lo, hi = (int(part) for part in text.split("-", 1))
        except ValueError:
            raise ValueError(f"{name}: expected MIN-MAX, got {text!r}") from None
        if lo < 0 or hi < lo or hi == 0:
            raise ValueError(f"{name}: need 0 <= MIN <= MAX and MAX > 0, got {text!r}")
        return cls(lo, hi)

    def __str__(self) -> str:
        return f"{self.min}-{self.max}"


@dataclass(frozen=True)
class Settings:
    """The settings of one gridsvc process; see the module docstring for each."""

    database_url: str = DEFAULT_DATABASE_URL
    test_database_url: str | None = None
    household_load: LoadRange = LoadRange(15, 25)
    member_load: LoadRange = LoadRange(8, 15)
    grid_households: LoadRange = LoadRange(300, 500)
    building_penalty_m: float = 150.0
    grid_penalty_m: float = 300.0
    max_pair_distance_m: float | None = None
    cross_community: bool = False
    churn_weight_m: float = 400.0
    far_pair_m: float = 500.0
    life_circles_m: tuple[int, ...] = (300, 500, 1000)
    reach_metric: str = "auto"
    road_snap_m: float = 200.0
    max_vertices: int = 10_000
    max_nesting: int = 32
    max_import_mb: float = 1024.0
    max_unzipped_mb: float = 1024.0
    max_zip_ratio: float = 200.0
    tiles: str = "none"
    tianditu_key: str = ""
    lang: str = "zh"
    timezone: str = "Asia/Shanghai"
    secret_key: str | None = None
    app_db_password: str = ""
    cookie_secure: bool = True
    session_hours: float = 8.0
    session_idle_minutes: float = 30.0
    login_max_failures: int = 5
    login_max_per_address: int = 20
    login_window_minutes: float = 15.0
    password_min_length: int = 10
    max_upload_mb: float = 50.0
    import_inline_max_mb: float = 2.0
    id_numbers: str = "hash"
    address_fuzzy_min: float = 0.85
    address_fuzzy_margin: float = 0.1
    demo_admin_password: str = field(default="", repr=False)
    demo_viewer_password: str = field(default="", repr=False)
    demo_member_password: str = field(default="", repr=False)
    demo_cadre_password: str = field(default="", repr=False)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    worker_heartbeat_s: float = 5.0
    worker_stalled_s: float = 30.0
    stalled_check_s: int = 10
    follow_s: float = 1.0
    audit_retention_days: int = 365
    contact_days: int = 30
    contact_days_vulnerable: int = 7
    contact_max_age_days: int = 730
    contact_churn_m: float = 100.0
    member_open_requests_max: int = 3
    request_accept_days: int = 1
    request_finish_days: int = 7
    request_limits: str = ""
    wish_open_days: int = 14
    member_open_wishes_max: int = 2

    @property
    def zone(self) -> Any:
        """:attr:`timezone` as a ``zoneinfo.ZoneInfo``."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    @property
    def effective_test_database_url(self) -> str:
        """The test database URL: given, or the main one with ``_test`` appended."""
        if self.test_database_url:
            return self.test_database_url
        url = make_url(self.database_url)
        return url.set(database=f"{url.database}_test").render_as_string(hide_password=False)


def normalise_database_url(url: str) -> str:
    """Make ``postgres://`` / ``postgresql://`` URLs run over psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _choice(text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError(f"expected a number > 0, got {value!r}")
    return value


def _retention_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number of days, got {text!r}") from None
    if days < AUDIT_RETENTION_FLOOR_DAYS:
        raise ValueError(f"at least {AUDIT_RETENTION_FLOOR_DAYS} days, got {text!r}")
    return days


def _fraction(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a whole number > 0, got {text!r}")
    return value


def _request_limits(text: str) -> str:
    """``repair:1/3,mediation:1/14``: known categories, whole days > 0, accept <= finish."""
    categories = ("mediation", "sanitation", "elderly_care", "policy", "repair", "other")
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, days = part.partition(":")
        accept, _, finish = days.partition("/")
        if name.strip() not in categories or not (accept.isdigit() and finish.isdigit()):
            raise ValueError(f"expected category:accept/finish like repair:1/3, got {part!r}")
        if not 0 < int(accept) <= int(finish):
            raise ValueError(f"expected 0 < accept days <= finish days, got {part!r}")
    return text


def _zone(text: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r} (an IANA name like Asia/Shanghai)") from None
    return text.strip()


def _seconds_of_minute(value: int) -> int:
    if not 1 <= value <= 59:
        raise ValueError(f"expected whole seconds from 1 to 59, got {value!r}")
    return value


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


_PARSERS: dict[str, tuple[str, Any]] = {
    "TEST_DATABASE_URL": ("test_database_url", normalise_database_url),
    "HOUSEHOLD_LOAD": ("household_load", lambda v: LoadRange.parse(v, name="HOUSEHOLD_LOAD")),
    "MEMBER_LOAD": ("member_load", lambda v: LoadRange.parse(v, name="MEMBER_LOAD")),
    "GRID_HOUSEHOLDS": ("grid_households", lambda v: LoadRange.parse(v, name="GRID_HOUSEHOLDS")),
    "BUILDING_PENALTY_M": ("building_penalty_m", float),
    "GRID_PENALTY_M": ("grid_penalty_m", float),
    "MAX_PAIR_DISTANCE_M": ("max_pair_distance_m", _optional_float),
    "CROSS_COMMUNITY": ("cross_community", _flag),
    "CHURN_WEIGHT_M": ("churn_weight_m", float),
    "FAR_PAIR_M": ("far_pair_m", float),
    "LIFE_CIRCLES_M": ("life_circles_m", lambda v: tuple(int(x) for x in v.split(","))),
    "REACH_METRIC": ("reach_metric", lambda v: _choice(v, REACH_METRICS)),
    "ROAD_SNAP_M": ("road_snap_m", lambda v: _positive(float(v))),
    "MAX_VERTICES": ("max_vertices", int),
    "MAX_NESTING": ("max_nesting", int),
    "MAX_IMPORT_MB": ("max_import_mb", float),
    "MAX_UNZIPPED_MB": ("max_unzipped_mb", lambda v: _positive(float(v))),
    "MAX_ZIP_RATIO": ("max_zip_ratio", lambda v: _positive(float(v))),
    "TILES": ("tiles", str),
    "TIANDITU_KEY": ("tianditu_key", str),
    "LANG": ("lang", str),
    "TIMEZONE": ("timezone", _zone),
    "SECRET_KEY": ("secret_key", str),
    "APP_DB_PASSWORD": ("app_db_password", str),
    "COOKIE_SECURE": ("cookie_secure", _flag),
    "SESSION_HOURS": ("session_hours", float),
    "SESSION_IDLE_MINUTES": ("session_idle_minutes", lambda v: _positive(float(v))),
    "LOGIN_MAX_FAILURES": ("login_max_failures", lambda v: int(_positive(int(v)))),
    "LOGIN_MAX_PER_ADDRESS": ("login_max_per_address", lambda v: int(_positive(int(v)))),
    "LOGIN_WINDOW_MINUTES": ("login_window_minutes", lambda v: _positive(float(v))),
    "PASSWORD_MIN_LENGTH": ("password_min_length", lambda v: int(_positive(int(v)))),
    "MAX_UPLOAD_MB": ("max_upload_mb", float),
    "IMPORT_INLINE_MAX_MB": ("import_inline_max_mb", float),
    "ID_NUMBERS": ("id_numbers", lambda v: _choice(v, ("hash", "drop"))),
    "ADDRESS_FUZZY_MIN": ("address_fuzzy_min", lambda v: _fraction(float(v))),
    "ADDRESS_FUZZY_MARGIN": ("address_fuzzy_margin", lambda v: _fraction(float(v))),
    "DEMO_ADMIN_PASSWORD": ("demo_admin_password", str),
    "DEMO_VIEWER_PASSWORD": ("demo_viewer_password", str),
    "DEMO_MEMBER_PASSWORD": ("demo_member_password", str),
    "DEMO_CADRE_PASSWORD": ("demo_cadre_password", str),
    "AUDIT_RETENTION_DAYS": ("audit_retention_days", _retention_days),
    "CONTACT_DAYS": ("contact_days", lambda v: _positive_int(v)),
    "CONTACT_DAYS_VULNERABLE": ("contact_days_vulnerable", lambda v: _positive_int(v)),
    "CONTACT_MAX_AGE_DAYS": ("contact_max_age_days", lambda v: _positive_int(v)),
    "CONTACT_CHURN_M": ("contact_churn_m", float),
    "WORKERS": ("workers", lambda v: int(_positive(int(v)))),
    "WORKER_HEARTBEAT_S": ("worker_heartbeat_s", lambda v: _positive(float(v))),
    "WORKER_STALLED_S": ("worker_stalled_s", lambda v: _positive(float(v))),
    "STALLED_CHECK_S": ("stalled_check_s", lambda v: _seconds_of_minute(int(v))),
    "FOLLOW_S": ("follow_s", lambda v: _positive(float(v))),
    "MEMBER_OPEN_REQUESTS_MAX": ("member_open_requests_max", lambda v: _positive_int(v)),
    "REQUEST_ACCEPT_DAYS": ("request_accept_days", lambda v: _positive_int(v)),
    "REQUEST_FINISH_DAYS": ("request_finish_days", lambda v: _positive_int(v)),
    "REQUEST_LIMITS": ("request_limits", _request_limits),
    "WISH_OPEN_DAYS": ("wish_open_days", lambda v: _positive_int(v)),
    "MEMBER_OPEN_WISHES_MAX": ("member_open_wishes_max", lambda v: _positive_int(v)),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply ``overrides``.

    Raises
    ------
    ValueError
        When a value is malformed; the message names the variable.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    url = env.get("GRIDSVC_DATABASE_URL") or env.get("DATABASE_URL")
    if url:
        values["database_url"] = normalise_database_url(url)
    for suffix, (attr, parse) in _PARSERS.items():
        raw = env.get(f"GRIDSVC_{suffix}")
        if raw is None:
            continue
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"GRIDSVC_{suffix}: {exc}") from None
    if values.get("lang", "zh") not in {"zh", "en"}:
        raise ValueError(f"GRIDSVC_LANG: expected zh or en, got {values['lang']!r}")
    values.update(overrides)
    return Settings(**values)
