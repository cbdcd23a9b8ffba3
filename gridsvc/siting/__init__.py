"""Red Station siting: maximal covering (MCLP) and set covering (LSCP), pure numpy/scipy."""

from gridsvc.siting.coverage import (
    Coverage,
    coverage_from_cost_matrix,
    coverage_from_points,
    lattice,
)
from gridsvc.siting.models import (
    EXACT_MAX_CANDIDATES,
    EXACT_MAX_DEMAND,
    LSCP,
    MCLP,
    SitingResult,
)
from gridsvc.siting.weights import VulnerabilityWeights

__all__ = [
    "EXACT_MAX_CANDIDATES",
    "EXACT_MAX_DEMAND",
    "LSCP",
    "MCLP",
    "Coverage",
    "SitingResult",
    "VulnerabilityWeights",
    "coverage_from_cost_matrix",
    "coverage_from_points",
    "lattice",
]
