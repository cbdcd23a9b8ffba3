"""The request state machine under hypothesis, and the dispatch flow against an exact solve."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from gridsvc.errors import Conflict, InputRejected
from gridsvc.requests import dispatch as dsp
from gridsvc.requests.states import ACTIONS, CLOSED, STATES, allowed, step

ACTION = st.sampled_from([*ACTIONS, "jump"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(ACTION, st.sampled_from([None, "", "已处理", "x" * 2001]), st.integers(0, 6)),
        max_size=40,
    )
)
def test_no_illegal_transition_and_every_event_recorded(ops) -> None:
    state, level, history = "waiting", 0, []
    for action, note, sat in ops:
        before = (state, level)
        try:
            ev = step(state, action, level=level, note=note, satisfaction=sat)
        except (Conflict, InputRejected):
            assert (state, level) == before  # a refusal changes nothing
            continue
        sources, target = ACTIONS[action]
        assert state in sources and ev.to_state == target and ev.from_state == state
        assert action in allowed(state)
        if action in ("decline", "finish"):
            assert ev.note
        if action == "visit":
            assert 1 <= sat <= 5
        history.append(ev)
        state, level = ev.to_state, ev.level
        assert 0 <= level <= 2
    # the history replays: each event starts where the previous ended, nothing lost
    current = "waiting"
    for ev in history:
        assert ev.from_state == current
        current = ev.to_state
    assert current == state and state in STATES


def test_closed_requests_move_only_to_visit() -> None:
    for state in CLOSED:
        assert set(allowed(state)) <= {"visit"}
    with pytest.raises(Conflict):
        step("visited", "accept")
    with pytest.raises(InputRejected):
        step("dispatched", "decline", note="  ")
    with pytest.raises(Conflict):
        step("escalated", "escalate", level=2)


def _case(rng: np.random.Generator):
    n, m = int(rng.integers(1, 9)), int(rng.integers(1, 5))
    community = rng.integers(0, 2, size=n)
    pool = dsp.Pool(
        ids=np.arange(m) + 100,
        x=rng.uniform(0, 800, m),
        y=rng.uniform(0, 800, m),
        building=rng.integers(-1, 3, m),
        grid=rng.integers(-1, 2, m),
        community=rng.integers(0, 2, m),
        room=rng.integers(0, 4, m),
    )
    paired = np.where(rng.random(n) < 0.6, rng.integers(0, m, n), -1)
    declined = [
        frozenset(rng.choice(m, size=int(rng.integers(0, 2)), replace=False).tolist())
        for _ in range(n)
    ]
    waiting = dsp.Waiting(
        ids=np.arange(n),
        x=rng.uniform(0, 800, n),
        y=rng.uniform(0, 800, n),
        building=rng.integers(-1, 3, n),
        grid=rng.integers(-1, 2, n),
        community=community,
        paired=paired,
        vulnerable=rng.random(n) < 0.3,
        declined=declined,
    )
    return waiting, pool


def _exact(w: dsp.Waiting, p: dsp.Pool, node: np.ndarray, srv: np.ndarray) -> int:
    """Members duplicated into slots, one dummy column per request (unserved)."""
    cost, _ = dsp.arc_cost(w, p, node, srv, 150.0, 300.0)
    slots = [j for j in range(p.m) for _ in range(int(p.room[j]))]
    big = 10**12
    matrix = np.full((w.n, len(slots) + w.n), big, dtype=np.int64)
    for k, j in enumerate(slots):
        for a in np.flatnonzero(srv == j):
            matrix[node[a], k] = cost[a]
    unserved = dsp.unserved_cost(w)
    for i in range(w.n):
        matrix[i, len(slots) + i] = unserved[i]
    rows, cols = linear_sum_assignment(matrix)
    return int(matrix[rows, cols].sum())


@pytest.mark.parametrize("seed", range(60))
def test_dispatch_flow_equals_exact_solve_and_respects_room(seed: int) -> None:
    w, p = _case(np.random.default_rng(seed))
    node, srv = dsp.candidate_arcs(w, p, k=50)
    got = dsp.solve_dispatch(w, p, node, srv, building_penalty=150.0, grid_penalty=300.0)
    assert got.cost == _exact(w, p, node, srv)
    load = np.bincount(got.srv[got.srv >= 0], minlength=p.m)
    assert (load <= p.room).all()
    for i, s in enumerate(got.srv):
        if s >= 0:
            assert p.community[s] == w.community[i] or w.paired[i] == s
            assert s not in w.declined[i]
    greedy = dsp.greedy_dispatch(w, p, node, srv, building_penalty=150.0, grid_penalty=300.0)
    assert got.cost <= greedy.cost


def test_vulnerable_first_and_paired_preferred() -> None:
    pool = dsp.Pool(
        np.array([1]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([-1]),
        np.array([-1]),
        np.array([0]),
        np.array([1]),
    )
    w = dsp.Waiting(
        np.array([10, 11]),
        np.array([5.0, 500.0]),
        np.array([0.0, 0.0]),
        np.array([-1, -1]),
        np.array([-1, -1]),
        np.array([0, 0]),
        np.array([-1, -1]),
        np.array([False, True]),
    )
    node, srv = dsp.candidate_arcs(w, pool)
    got = dsp.solve_dispatch(w, pool, node, srv, building_penalty=150.0, grid_penalty=300.0)
    assert got.srv.tolist() == [-1, 0]  # the vulnerable household although farther
    assert (
        dsp.reason(paired=False, had_pair=True, pair_state="full", cap=3, dist=180.4)
        == "结对党员已有3件在办，就近有余力党员 180 米"
    )
    assert dsp.reason(paired=True, had_pair=True, pair_state=None, cap=3, dist=0.0) == "结对党员"
