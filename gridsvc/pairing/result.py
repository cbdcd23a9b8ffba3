"""The frozen result of a pairing run: pairs, unpaired clients, reserve servers, bound and gap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Why a client has no server.
NO_SERVER_IN_SCOPE = "no_server_in_scope"
BEYOND_MAX_DISTANCE = "beyond_max_distance"
ALL_FULL = "servers_full"
# Why an eligible server carries nobody.
NOT_ELIGIBLE = "not_eligible"
SURPLUS = "surplus"
MAX_ACTIVE = "max_active_reached"
NO_CLIENT_IN_REACH = "no_client_in_reach"
# Why a result has no lower bound (``lower_bound`` and ``gap`` are then NaN).
BOUND_TRIVIAL = "bound_trivial"
BOUND_SHORTFALL = "bound_shortfall"
BOUND_NOT_FOUND = "bound_not_found"

REASONS_ZH = {
    NO_SERVER_IN_SCOPE: "范围内没有可结对的对象",
    BEYOND_MAX_DISTANCE: "超出最大结对距离",
    ALL_FULL: "附近可结对对象已满额",
    NOT_ELIGIBLE: "不可参与结对",
    SURPLUS: "人数富余，作为后备",
    MAX_ACTIVE: "已达到在岗人数上限",
    NO_CLIENT_IN_REACH: "可达范围内没有对象",
    BOUND_TRIVIAL: "下界无法证明大于0（各户在松弛中都可零成本结对），差距无从计算",
    BOUND_SHORTFALL: "有人低于最少结对数，方案不满足规则，不计算下界",
    BOUND_NOT_FOUND: "时限内未得到下界",
}
BOUND_REASONS_EN = {
    BOUND_TRIVIAL: "no lower bound above 0 could be proven (in the relaxation every client "
    "pairs at no cost), so there is no gap to report",
    BOUND_SHORTFALL: "some servers are below their minimum load: the plan breaks a rule, "
    "no bound is computed",
    BOUND_NOT_FOUND: "no lower bound was found within the time limit",
}


@dataclass(frozen=True, eq=False)
class PairingResult:
    """Pairs and their explanation; arrays index the problem's clients and servers.

    Attributes
    ----------
    status
        ``"optimal"`` (cost equals the lower bound) or ``"feasible"`` (gap reported).
    case
        ``"balanced"``, ``"surplus"`` (some servers reserve) or ``"deficit"``.
    pair_client, pair_server, pair_distance, pair_cost, same_building, same_grid, pair_pinned
        One entry per pair: indices, metres, cost in metres (distance plus penalties), flags.
    server_load, active
        Clients per server and whether it carries any.
    unpaired, unpaired_reason, unpaired_distance
        Clients without a server, furthest from any eligible server first, with the reason
        and that distance (``inf`` when none is in scope).
    reserve, reserve_reason
        Servers carrying nobody, with the reason.
    cost, churn_cost, lower_bound, gap
        Total pair cost (metres); when rebalancing, the churn weight paid for the clients
        moved off their current server (else 0); a proven lower bound on the objective
        (``cost + churn_cost``) for the paired count achieved, and
        ``(objective - lower_bound) / objective``. Both are NaN when no bound is available.
    bound_reason
        Why there is no bound (one of ``BOUND_*``; ``""`` when there is one).
    coverage_bound
        The most clients the loads and rules allow (a max-flow bound); ``n_paired`` equals it
        unless ``max_active`` binds.
    shortfall
        Client units missing to bring every active server up to its minimum load.
    timings
        Seconds per phase.
    """

    status: str
    case: str
    pair_client: np.ndarray
    pair_server: np.ndarray
    pair_distance: np.ndarray
    pair_cost: np.ndarray
    same_building: np.ndarray
    same_grid: np.ndarray
    pair_pinned: np.ndarray
    server_load: np.ndarray
    unpaired: np.ndarray
    unpaired_reason: np.ndarray
    unpaired_distance: np.ndarray
    reserve: np.ndarray
    reserve_reason: np.ndarray
    cost: float
    lower_bound: float
    gap: float
    coverage_bound: int
    shortfall: int
    timings: Mapping[str, float]
    client_ids: np.ndarray
    server_ids: np.ndarray
    churn_cost: float = 0.0
    bound_reason: str = ""

    @property
    def bound_available(self) -> bool:
        """Whether a proven lower bound (and so a gap) is reported."""
        return bool(np.isfinite(self.lower_bound))

    @property
    def objective(self) -> float:
        """What the solver minimises and the bound bounds: pair cost plus churn."""
        return self.cost + self.churn_cost

    @property
    def n_paired(self) -> int:
        """Number of paired clients."""
        return len(self.pair_client)

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of servers that carry at least one client."""
        return self.server_load > 0

    def assignment(self) -> np.ndarray:
        """The server index of each client, ``-1`` when unpaired."""
        out = np.full(len(self.client_ids), -1, dtype=np.int64)
        out[self.pair_client] = self.pair_server
        return out

    def pairs_frame(self) -> pd.DataFrame:
        """One row a pair: client and server codes, distance_m, flags, cost_m."""
        return pd.DataFrame(
            {
                "client": self.client_ids[self.pair_client],
                "server": self.server_ids[self.pair_server],
                "distance_m": self.pair_distance,
                "same_building": self.same_building,
                "same_grid": self.same_grid,
                "pinned": self.pair_pinned,
                "cost_m": self.pair_cost,
            }
        )

    def unpaired_frame(self) -> pd.DataFrame:
        """One row an unpaired client, ranked furthest first, with its reason."""
        return pd.DataFrame(
            {
                "client": self.client_ids[self.unpaired],
                "rank": np.arange(1, len(self.unpaired) + 1),
                "reason": self.unpaired_reason,
                "nearest_server_m": self.unpaired_distance,
            }
        )

    def reserve_frame(self) -> pd.DataFrame:
        """One row a reserve server with its reason."""
        return pd.DataFrame(
            {"server": self.server_ids[self.reserve], "reason": self.reserve_reason}
        )

    def summary(self) -> str:
        """One line: case, paired/bound, cost, lower bound, gap, status, seconds."""
        return (
            f"{self.case}: paired {self.n_paired}/{self.coverage_bound} "
            f"(unpaired {len(self.unpaired)}), active {int(self.active.sum())}, "
            f"reserve {len(self.reserve)}, cost {self.cost:,.1f} m, "
            + (f"churn {self.churn_cost:,.1f} m, " if self.churn_cost else "")
            + (
                f"bound {self.lower_bound:,.1f} m, gap {self.gap:.2%}, "
                if self.bound_available
                else f"bound unavailable ({BOUND_REASONS_EN.get(self.bound_reason, '')}), "
            )
            + f"{self.status}, {self.timings.get('total', 0.0):.2f} s"
        )
