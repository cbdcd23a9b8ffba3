"""Coverage, blind spots and Red Station siting of a street or community."""

from gridsvc.coverage.blindspots import KINDS, BlindSpots, find_blindspots
from gridsvc.coverage.report import CoverageReport, compute_coverage
from gridsvc.coverage.sites import SiteRun, load_suggestions, suggest_sites

__all__ = [
    "KINDS",
    "BlindSpots",
    "CoverageReport",
    "SiteRun",
    "compute_coverage",
    "find_blindspots",
    "load_suggestions",
    "suggest_sites",
]
