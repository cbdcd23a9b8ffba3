"""A rebalance keeps pairs that work: each client's own churn (recent contacts) in the engine."""

from __future__ import annotations

import numpy as np
import pytest

from gridsvc.errors import InfeasibleSettings
from gridsvc.pairing.problem import PairingProblem


def _problem(**kw):
    # servers A (x=0) and B (x=40); the client at x=45 is with A now, B is 40 m nearer
    return PairingProblem.from_arrays(
        [[45.0, 0.0], [2.0, 0.0]],
        [[0.0, 0.0], [40.0, 0.0]],
        server_min=0,
        server_max=1,
        building_penalty=0.0,
        grid_penalty=0.0,
        current=[0, 1],
        **kw,
    )


def test_own_churn_keeps_a_pair_that_the_flat_weight_would_move():
    moved = _problem(churn_weight=10.0).solve(time_limit=5).assignment()
    kept = _problem(churn_weight=10.0, client_churn=[100.0, 0.0]).solve(time_limit=5)
    assert moved.tolist() == [1, 0]  # 45 + 2 + 2 x 10 churn < 45 + 38: both move
    assert kept.assignment().tolist() == [0, 1]  # 6 contacts' worth keeps them
    assert kept.churn_cost == pytest.approx(0.0)


def test_own_churn_is_checked():
    with pytest.raises(InfeasibleSettings, match="client_churn"):
        _problem(client_churn=[1.0])
    with pytest.raises(InfeasibleSettings, match="client_churn"):
        _problem(client_churn=[np.nan, 1.0])
