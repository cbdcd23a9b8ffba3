"""The frames coverage and blind spots work on: a scope and its layers, x/y in metres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridsvc.siting.network import RoadNetwork


@dataclass(frozen=True)
class Scope:
    """The communities a computation covers, and how the caller named them."""

    level: str  # "all", "street" or "community"
    code: str | None
    name: str | None
    community_ids: np.ndarray
    street_ids: np.ndarray

    def to_dict(self) -> dict[str, object]:
        """Plain description of the scope."""
        return {"level": self.level, "code": self.code, "name": self.name}


@dataclass(frozen=True)
class ScopeData:
    """Everything coverage and blind spots read, as frames with x/y in metres (``epsg``).

    ``pairs_available`` is False when the pairing views do not exist yet (no plan: all unpaired).
    ``contacts`` is the contact state of the paired households (None without a contact log).
    ``network`` is the walking network of the roads loaded around the scope (None when no road
    is loaded there, or straight-line distance was asked for).
    """

    scope: Scope
    epsg: int
    communities: pd.DataFrame
    grids: pd.DataFrame
    buildings: pd.DataFrame
    households: pd.DataFrame
    members: pd.DataFrame
    cadres: pd.DataFrame
    stations: pd.DataFrame
    household_pairs: pd.DataFrame
    member_pairs: pd.DataFrame
    pairs_available: bool
    network: RoadNetwork | None = None
    #: Paired households' contact state now (``gridsvc.contacts.cadence.classify``): household_id,
    #: last_at, cadence_days, vulnerable, overdue, overdue_days, status. None: no contact log.
    contacts: pd.DataFrame | None = None
    #: Open requests past their time limit (issue 11): id, community_id, household, category,
    #: state, member, days_over, lon, lat. None: no request table.
    requests: pd.DataFrame | None = None
