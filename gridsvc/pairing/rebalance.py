"""Rebalancing diff: kept, moved, new and dropped pairs between a plan and a new result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridsvc.pairing.result import PairingResult

# Why a pair changed.
SERVER_GONE = "server_unavailable"
NEW_CLIENT = "new_client"
LOAD_CHANGED = "rebalanced_for_loads_or_distance"


@dataclass(frozen=True, eq=False)
class RebalanceDiff:
    """Changes from the current plan to a proposed one (client and server indices).

    ``forced`` counts the changes the data force: clients whose server is gone, and new
    clients; every other change is the optimiser's choice, traded against the churn weight.
    """

    kept: pd.DataFrame  # client, server
    moved: pd.DataFrame  # client, old_server, server, reason
    new: pd.DataFrame  # client, server, reason
    dropped: pd.DataFrame  # client, old_server, reason
    forced: int

    @property
    def changed(self) -> int:
        """Pairs that differ from the current plan."""
        return len(self.moved) + len(self.new) + len(self.dropped)

    def summary(self) -> str:
        """One line of counts."""
        return (
            f"kept {len(self.kept)}, moved {len(self.moved)}, new {len(self.new)}, "
            f"dropped {len(self.dropped)} (changed {self.changed}, forced by data {self.forced})"
        )


def diff_pairs(
    current: np.ndarray,
    result: PairingResult,
    *,
    server_gone: np.ndarray,
) -> RebalanceDiff:
    """Diff ``current`` (server index per client, ``-1`` none) against ``result``.

    Parameters
    ----------
    current
        The current server of each client of the problem, ``-1`` for none (new clients).
    result
        The proposed pairing of the same clients and servers.
    server_gone
        ``(m,)`` booleans: servers that left or became unavailable.
    """
    new = result.assignment()
    cur = np.asarray(current, dtype=np.int64)
    idx = np.arange(len(new))
    had, has = cur >= 0, new >= 0
    gone = had & server_gone[np.maximum(cur, 0)]
    kept = had & has & (cur == new)
    moved = had & has & (cur != new)
    added = ~had & has
    dropped = had & ~has
    why_moved = np.where(gone[moved], SERVER_GONE, LOAD_CHANGED)
    reason_of = dict(zip(result.unpaired.tolist(), result.unpaired_reason.tolist(), strict=True))
    why_dropped = [reason_of.get(int(c), SERVER_GONE) for c in idx[dropped]]
    # forced: changes the data made necessary (a server gone, a client new and now paired);
    # a client unpaired before and after is no change, so it is not counted
    forced = int(gone.sum() + added.sum())
    return RebalanceDiff(
        kept=pd.DataFrame({"client": idx[kept], "server": new[kept]}),
        moved=pd.DataFrame(
            {
                "client": idx[moved],
                "old_server": cur[moved],
                "server": new[moved],
                "reason": why_moved,
            }
        ),
        new=pd.DataFrame({"client": idx[added], "server": new[added], "reason": NEW_CLIENT}),
        dropped=pd.DataFrame(
            {"client": idx[dropped], "old_server": cur[dropped], "reason": why_dropped}
        ),
        forced=forced,
    )
