"""Pairing engine: clients (households or members) to servers (members or cadres) with loads."""

from gridsvc.pairing.problem import PairingProblem
from gridsvc.pairing.rebalance import RebalanceDiff, diff_pairs
from gridsvc.pairing.result import PairingResult

__all__ = ["PairingProblem", "PairingResult", "RebalanceDiff", "diff_pairs"]
