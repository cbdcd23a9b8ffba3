"""The pairing problem: clients, servers, loads and planner controls as plain numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from gridsvc.errors import InfeasibleSettings
from gridsvc.pairing.result import PairingResult

ANY_COMMUNITY = -1
"""Server community id meaning "any community of the problem" (street cadres)."""


BUDGET_BASE_S = 2.0
BUDGET_PER_CLIENT_S = 1.5e-4
BUDGET_MAX_S = 5.0


def time_budget(n_clients: int) -> float:
    """Default seconds of search for a community of ``n_clients``: 2 s plus 0.15 ms a client,
    at most 5 s (3,700 households: 2.6 s; 11,440: 3.7 s; 20,000: 5 s).

    What ``bench/pairing.py --large`` shows reaching the converged cost on the Kunming
    community and the generated ones (docs/pairing-large.md); a flat 10 s gave the small
    communities time they did not use and the large ones too little to get past the start.
    """
    return float(min(BUDGET_BASE_S + BUDGET_PER_CLIENT_S * max(n_clients, 0), BUDGET_MAX_S))


def _ints(values: Any, n: int, *, default: int = -1) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.int64)
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if arr.size == 1 and n != 1:
        return np.full(n, int(arr[0]), dtype=np.int64)
    return arr


def _pairs(values: Any) -> np.ndarray:
    if values is None:
        return np.empty((0, 2), dtype=np.int64)
    return np.asarray(values, dtype=np.int64).reshape(-1, 2)


def _names(ids: Any, idx: np.ndarray) -> list[str]:
    return [str(ids[i]) for i in idx[:10]]


@dataclass(frozen=True, eq=False)
class PairingProblem:
    """Clients to pair with servers, each server carrying between ``min`` and ``max`` clients.

    Build with :meth:`from_arrays` or :meth:`from_frames`; call :meth:`solve`.
    Coordinates are in metres (a projected CRS). Group ids of ``-1`` mean "unknown" (never the
    same as anything); a server community of ``-1`` (:data:`ANY_COMMUNITY`) serves any community.
    """

    client_xy: np.ndarray
    server_xy: np.ndarray
    client_building: np.ndarray
    client_grid: np.ndarray
    client_community: np.ndarray
    server_building: np.ndarray
    server_grid: np.ndarray
    server_community: np.ndarray
    server_min: np.ndarray
    server_max: np.ndarray
    server_eligible: np.ndarray
    pinned: np.ndarray
    forbidden: np.ndarray
    max_distance: float | None = None
    cross_community: bool = False
    max_active: int | None = None
    building_penalty: float = 150.0
    grid_penalty: float = 300.0
    even_loads: bool = True
    client_weight: np.ndarray | None = None
    current: np.ndarray | None = None
    churn_weight: float = 0.0
    client_churn: np.ndarray | None = None
    client_ids: np.ndarray = field(default=None)  # type: ignore[assignment]
    server_ids: np.ndarray = field(default=None)  # type: ignore[assignment]
    client_label: str = "client"
    server_label: str = "server"

    @classmethod
    def from_arrays(
        cls,
        client_xy: Any,
        server_xy: Any,
        *,
        server_min: Any = 15,
        server_max: Any = 25,
        client_building: Any = None,
        client_grid: Any = None,
        client_community: Any = None,
        server_building: Any = None,
        server_grid: Any = None,
        server_community: Any = None,
        server_eligible: Any = None,
        pinned: Any = None,
        forbidden: Any = None,
        max_distance: float | None = None,
        cross_community: bool = False,
        max_active: int | None = None,
        building_penalty: float = 150.0,
        grid_penalty: float = 300.0,
        even_loads: bool = True,
        client_weight: Any = None,
        current: Any = None,
        churn_weight: float = 0.0,
        client_churn: Any = None,
        client_ids: Any = None,
        server_ids: Any = None,
        client_label: str = "client",
        server_label: str = "server",
    ) -> PairingProblem:
        """Build and validate a problem from arrays.

        Parameters
        ----------
        client_xy, server_xy
            ``(n, 2)`` and ``(m, 2)`` coordinates in metres.
        server_min, server_max
            Loads per server (scalars or ``(m,)`` arrays).
        client_building, client_grid, client_community, server_building, server_grid, \
server_community
            Integer group ids; ``-1`` is unknown. Communities default to one community.
        server_eligible
            ``(m,)`` booleans: servers that may serve at all.
        pinned, forbidden
            ``(k, 2)`` arrays of ``(client index, server index)``.
        max_distance
            Pairs longer than this many metres are never made.
        cross_community
            Let clients pair with servers of another community.
        max_active
            At most this many servers carry clients.
        building_penalty, grid_penalty
            Metres added to a pair whose ends lie in different buildings / grids.
        even_loads
            Break near-ties towards even loads (a millionth of the costliest pair per unit of
            load above the minimum).
        client_weight
            ``(n,)`` non-negative factors on each client's pair cost (priority households);
            default 1.
        current, churn_weight
            Rebalancing: the server of each client now (``-1`` none) and the metres a changed
            pair costs.
        client_churn
            ``(n,)`` extra metres a change of each client's current pair costs (pairs that
            work: the contacts of the last 90 days); default none.
        client_ids, server_ids
            Codes used in error messages and reports (default: the indices).

        Raises
        ------
        InfeasibleSettings
            When no solution can satisfy the settings; the message names them and the records.
        """
        cxy = np.asarray(client_xy, dtype=np.float64).reshape(-1, 2)
        sxy = np.asarray(server_xy, dtype=np.float64).reshape(-1, 2)
        n, m = len(cxy), len(sxy)
        problem = cls(
            client_xy=cxy,
            server_xy=sxy,
            client_building=_ints(client_building, n),
            client_grid=_ints(client_grid, n),
            client_community=_ints(client_community, n, default=0),
            server_building=_ints(server_building, m),
            server_grid=_ints(server_grid, m),
            server_community=_ints(server_community, m, default=0),
            server_min=_ints(server_min, m),
            server_max=_ints(server_max, m),
            server_eligible=(
                np.ones(m, dtype=bool)
                if server_eligible is None
                else np.asarray(server_eligible, dtype=bool).reshape(-1)
            ),
            pinned=_pairs(pinned),
            forbidden=_pairs(forbidden),
            max_distance=None if max_distance is None else float(max_distance),
            cross_community=bool(cross_community),
            max_active=None if max_active is None else int(max_active),
            building_penalty=float(building_penalty),
            grid_penalty=float(grid_penalty),
            even_loads=bool(even_loads),
            client_weight=(
                None
                if client_weight is None
                else np.asarray(client_weight, dtype=np.float64).reshape(-1)
            ),
            current=None if current is None else _ints(current, n),
            churn_weight=float(churn_weight),
            client_churn=(
                None
                if client_churn is None
                else np.asarray(client_churn, dtype=np.float64).reshape(-1)
            ),
            client_ids=np.arange(n) if client_ids is None else np.asarray(client_ids),
            server_ids=np.arange(m) if server_ids is None else np.asarray(server_ids),
            client_label=client_label,
            server_label=server_label,
        )
        problem.validate()
        return problem

    @classmethod
    def from_frames(
        cls,
        clients: pd.DataFrame,
        servers: pd.DataFrame,
        *,
        pinned: pd.DataFrame | None = None,
        forbidden: pd.DataFrame | None = None,
        **options: Any,
    ) -> PairingProblem:
        """Build a problem from frames indexed by record code.

        ``clients`` has columns ``x``, ``y`` and optional ``building``, ``grid``, ``community``
        (and ``current``: the code of the current server, for rebalancing); ``servers`` has ``x``,
        ``y``, ``min_load``, ``max_load`` and optional ``building``, ``grid``, ``community``,
        ``eligible``. ``pinned``/``forbidden`` have columns ``client`` and ``server`` (codes).
        Other keyword options are those of :meth:`from_arrays`.
        """
        c_pos = pd.Index(clients.index)
        s_pos = pd.Index(servers.index)

        def opt(frame: pd.DataFrame, col: str) -> Any:
            return frame[col].fillna(-1).to_numpy() if col in frame else None

        def pair_idx(frame: pd.DataFrame | None, what: str) -> np.ndarray:
            if frame is None or frame.empty:
                return np.empty((0, 2), dtype=np.int64)
            ci = c_pos.get_indexer(frame["client"])
            si = s_pos.get_indexer(frame["server"])
            bad = (ci < 0) | (si < 0)
            if bad.any():
                rows = frame[bad].astype(str).agg("→".join, axis=1).tolist()[:10]
                raise InfeasibleSettings(f"{what}: unknown client or server in {rows}")
            return np.column_stack([ci, si])

        current = None
        if "current" in clients:
            current = s_pos.get_indexer(clients["current"])  # unknown or missing: -1
        if "churn" in clients:
            options.setdefault("client_churn", clients["churn"].fillna(0).to_numpy(float))
        return cls.from_arrays(
            clients[["x", "y"]].to_numpy(),
            servers[["x", "y"]].to_numpy(),
            server_min=servers["min_load"].to_numpy(),
            server_max=servers["max_load"].to_numpy(),
            client_building=opt(clients, "building"),
            client_grid=opt(clients, "grid"),
            client_community=opt(clients, "community") if "community" in clients else 0,
            server_building=opt(servers, "building"),
            server_grid=opt(servers, "grid"),
            server_community=opt(servers, "community") if "community" in servers else 0,
            server_eligible=servers["eligible"].to_numpy() if "eligible" in servers else None,
            pinned=pair_idx(pinned, "pinned pairs"),
            forbidden=pair_idx(forbidden, "forbidden pairs"),
            current=current,
            client_ids=c_pos.to_numpy(),
            server_ids=s_pos.to_numpy(),
            **options,
        )

    @property
    def n_clients(self) -> int:
        """Number of clients."""
        return len(self.client_xy)

    @property
    def n_servers(self) -> int:
        """Number of servers."""
        return len(self.server_xy)

    def with_(self, **changes: Any) -> PairingProblem:
        """A validated copy with some fields changed."""
        problem = replace(self, **changes)
        problem.validate()
        return problem

    def validate(self) -> None:
        """Check shapes and planner controls; raise :class:`InfeasibleSettings` naming records."""
        n, m = self.n_clients, self.n_servers
        for name, arr, size in [
            ("client_building", self.client_building, n),
            ("client_grid", self.client_grid, n),
            ("client_community", self.client_community, n),
            ("server_building", self.server_building, m),
            ("server_grid", self.server_grid, m),
            ("server_community", self.server_community, m),
            ("server_min", self.server_min, m),
            ("server_max", self.server_max, m),
            ("server_eligible", self.server_eligible, m),
            ("client_ids", self.client_ids, n),
            ("server_ids", self.server_ids, m),
        ]:
            if len(arr) != size:
                raise InfeasibleSettings(f"{name}: expected {size} values, got {len(arr)}")
        if self.client_weight is not None and (
            len(self.client_weight) != n
            or not np.isfinite(self.client_weight).all()
            or (self.client_weight < 0).any()
        ):
            raise InfeasibleSettings(f"client_weight: expected {n} finite values >= 0")
        if self.client_churn is not None and (
            len(self.client_churn) != n
            or not np.isfinite(self.client_churn).all()
            or (self.client_churn < 0).any()
        ):
            raise InfeasibleSettings(f"client_churn: expected {n} finite values >= 0")
        if self.current is not None and len(self.current) != n:
            raise InfeasibleSettings(f"current: expected {n} values, got {len(self.current)}")
        if not (np.isfinite(self.client_xy).all() and np.isfinite(self.server_xy).all()):
            raise InfeasibleSettings("coordinates: every client and server needs finite x, y")
        s, c = self.server_label, self.client_label
        lo, hi = self.server_min, self.server_max
        bad = np.flatnonzero((lo > hi) | (lo < 0))
        if bad.size:
            raise InfeasibleSettings(
                f"load range: minimum above maximum (or negative) for {s} "
                f"{_names(self.server_ids, bad)}: "
                f"{[f'{a}-{b}' for a, b in zip(lo[bad], hi[bad], strict=True)][:10]}",
                details={"setting": "load range", "records": _names(self.server_ids, bad)},
            )
        if n and m and not self.server_eligible.any():
            raise InfeasibleSettings(
                f"eligibility: no eligible {s} among {m}",
                details={"setting": "eligible", "records": []},
            )
        if self.max_active is not None and self.max_active < 0:
            raise InfeasibleSettings(f"max_active: must be >= 0, got {self.max_active}")
        self._validate_pairs(self.forbidden, "forbidden")
        self._validate_pairs(self.pinned, "pinned")
        if not self.pinned.size:
            return
        pc, ps = self.pinned[:, 0], self.pinned[:, 1]
        dup = np.flatnonzero(np.bincount(pc, minlength=n) > 1)
        if dup.size:
            raise InfeasibleSettings(
                f"pinned pairs: {c} pinned to more than one {s}: {_names(self.client_ids, dup)}",
                details={"setting": "pinned", "records": _names(self.client_ids, dup)},
            )
        over = np.flatnonzero(np.bincount(ps, minlength=m) > self.server_max)
        if over.size:
            raise InfeasibleSettings(
                f"pinned pairs: more pins than the maximum load for {s} "
                f"{_names(self.server_ids, over)}",
                details={"setting": "pinned", "records": _names(self.server_ids, over)},
            )
        off = np.flatnonzero(~self.server_eligible[ps])
        if off.size:
            raise InfeasibleSettings(
                f"pinned pairs: pinned to an ineligible {s}: {_names(self.server_ids, ps[off])}",
                details={"setting": "pinned", "records": _names(self.server_ids, ps[off])},
            )
        if self.forbidden.size:
            both = np.intersect1d(pc * m + ps, self.forbidden[:, 0] * m + self.forbidden[:, 1])
            if both.size:
                recs = [f"{self.client_ids[k // m]}→{self.server_ids[k % m]}" for k in both]
                raise InfeasibleSettings(
                    f"pinned pairs: also forbidden: {recs[:10]}",
                    details={"setting": "pinned", "records": recs[:10]},
                )

    def _validate_pairs(self, pairs: np.ndarray, name: str) -> None:
        if not pairs.size:
            return
        bad = (
            (pairs[:, 0] < 0)
            | (pairs[:, 0] >= self.n_clients)
            | (pairs[:, 1] < 0)
            | (pairs[:, 1] >= self.n_servers)
        )
        if bad.any():
            raise InfeasibleSettings(
                f"{name} pairs: indices out of range: {pairs[bad][:10].tolist()}",
                details={"setting": name, "records": pairs[bad][:10].tolist()},
            )

    def solve(
        self,
        *,
        gap_tolerance: float = 0.005,
        time_limit: float | None = None,
        k_nearest: int = 8,
        split: bool = True,
        kicks: int = 20,
        certify_seconds: float = 2.0,
    ) -> PairingResult:
        """Pair clients with servers; return a frozen :class:`PairingResult`.

        Parameters
        ----------
        gap_tolerance
            Stop improving the active set once (cost - lower bound) / cost is below this.
        time_limit
            Seconds for the active-set search (the min-cost flows always finish); ``None``:
            :func:`time_budget` of each community's number of clients.
        k_nearest
            Candidate servers per client (widened automatically where a rule needs more).
        split
            Solve independent communities separately (when no setting couples them).
        kicks
            Surplus case: stop the iterated local search after this many random kicks in a
            row that found nothing better.
        certify_seconds
            With the active set fixed (balanced, deficit), keep pricing every allowed pair for
            at least this long, past the time limit if need be: those rounds cut the cost
            where candidate arcs fall short and prove the bound.

        Raises
        ------
        SolverFailed
            When a min-cost flow does not reach a proven optimum.
        """
        from gridsvc.pairing._solve import solve_problem

        return solve_problem(
            self,
            gap_tolerance=gap_tolerance,
            time_limit=time_limit,
            k_nearest=k_nearest,
            split=split,
            kicks=kicks,
            certify_seconds=certify_seconds,
        )
