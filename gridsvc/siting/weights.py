"""Siting demand weights: vulnerable households (elderly alone, disabled, children) weigh more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from gridsvc.errors import InputRejected, Reject


@dataclass(frozen=True)
class VulnerabilityWeights:
    """Weight of a household: ``base + Σ extra × flag`` over the vulnerability flags.

    A household with an elderly person living alone and a disabled member weighs, with the
    defaults, ``1 + 2 + 2 = 5``; ``children`` is multiplied by the number of children when a
    count is given rather than a flag.
    """

    base: float = 1.0
    elderly_alone: float = 2.0
    disabled: float = 2.0
    children: float = 1.0

    @classmethod
    def parse(cls, text: str) -> VulnerabilityWeights:
        """Parse ``"elderly_alone=3,disabled=2,children=0.5"`` (unnamed ones keep defaults)."""
        names = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            name = name.strip()
            reason = None
            if not sep or name not in names:
                reason = f"expected NAME=NUMBER with NAME one of {', '.join(sorted(names))}"
            else:
                try:
                    values[name] = float(raw)
                except ValueError:
                    reason = "not a number"
                else:
                    if not (np.isfinite(values[name]) and values[name] >= 0):
                        reason = "must be a finite number >= 0"
            if reason:
                raise InputRejected(
                    f"--weights: {part!r}: {reason}",
                    [Reject("--weights", None, name, reason, part)],
                )
        return cls(**values)

    def of(self, flags: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Per-household weights from flag (or count) arrays named like the fields; missing = 0."""
        w = np.full(n, self.base, dtype=float)
        for f in fields(self):
            if f.name != "base" and f.name in flags:
                w += getattr(self, f.name) * np.nan_to_num(np.asarray(flags[f.name], dtype=float))
        return w
