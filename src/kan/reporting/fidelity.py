"""How close ours is to the paper: tolerance checks, the stricter fidelity bands, likely causes.

Every compared number is judged twice: within its block's tolerance (``paper.yaml``) and within
a stricter band, a factor of 3 for ratios (RMSEs, MSEs, exponents, counts) or 2 percentage points
for accuracies (never looser than the block's own tolerance). A number outside its tolerance gets a
*likely cause*: a curated one from the profile's ``report.miss_causes`` when given, else one
inferred from the cell (the paper's copies disagree, ours is better than the paper, or the
profile trains on a smaller budget than the paper). A claim of the paper that does not hold in
ours gets one too (curated by :func:`claim_key`, else the budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

STRICT_FACTOR = 3.0
STRICT_POINTS = 0.02

CAUSE_UNCERTAIN = "seed or copy: the paper's copies disagree on this cell (⚑)"
CAUSE_BETTER = ("ours better than the paper: our data choices where the paper is silent (ranges, sizes) or "
                "the selection over our sweep; not a shortfall")
CAUSE_OTHER_SHAPE = ("different models: our minimal shape differs from the paper's (its shape row), so neither "
                     "RMSE is the better one")
CAUSE_BUDGET = "budget: this profile trains fewer steps, grids, depths and seeds than the paper"
CAUSE_UNEXPLAINED = "not explained by budget: protocol (an unstated choice of ours) or a real disagreement"


def within_band(ours: float, paper: float, is_accuracy: bool, tolerance: float) -> bool:
    """Accuracies: ``|ours - paper| <= tolerance``; other numbers: ``ours / paper`` in ``[1/tolerance, tolerance]``."""
    if is_accuracy:  # the slack keeps a difference of exactly the tolerance inside on both sides
        return abs(ours - paper) <= tolerance + 1e-9
    ratio = ours / paper
    return 1 / tolerance <= ratio <= tolerance


def ratio_text(ratio: float, tolerance: float, within: bool) -> str:
    """``ratio`` (ours/paper, or its inverse: the band [1/f, f] is the same) to 3 significant
    digits, or to more where 3 would print it on the other side of the band than its verdict
    ``within`` (e.g. 0.09996 shown as 0.1 beside "outside ×10")."""
    for digits in range(3, 10):
        text = f"{ratio:.{digits}g}"
        if within_band(float(text), 1.0, False, tolerance) == within:
            return text
    return text


def strict_tolerance(is_accuracy: bool, tolerance: float) -> float:
    """The stricter band for a cell whose block tolerance is ``tolerance``."""
    return min(STRICT_POINTS if is_accuracy else STRICT_FACTOR, tolerance)


def lower_is_better(quantity: str) -> bool | None:
    """True for errors, False for accuracies and exponents, None where neither side is better."""
    name = quantity.split(":")[-1].strip().split(" ")[0]
    if name.endswith(("_rmse", "mse", "l2_squared")):
        return True
    if name.endswith(("accuracy", "_exponent")):
        return False
    return None


class Judged(Protocol):
    """What a comparison must expose to be tallied and explained."""

    quantity: str
    paper: float
    ours: float
    uncertain: bool
    sided: bool  # False: the two numbers are of different models, so neither side is better

    @property
    def within_tolerance(self) -> bool: ...

    @property
    def within_strict(self) -> bool: ...


def better_than_paper(comparison: Judged) -> bool:
    """Whether ours is on the better side of the paper's number (lower errors, higher accuracies and exponents)."""
    lower = lower_is_better(comparison.quantity)
    return comparison.sided and lower is not None and comparison.ours != comparison.paper and (comparison.ours < comparison.paper) == lower


def cause_key(block: str, dataset: str, quantity: str) -> str:
    """The key of a curated cause in ``report.miss_causes``: ``block/dataset/quantity`` (dataset may be empty)."""
    return "/".join(part for part in (block, dataset, quantity) if part)


def claim_key(block: str, metric: str) -> str:
    """The ``report.miss_causes`` key of a claim of ``block`` checked on ``metric``: ``block/claim/metric``."""
    return cause_key(block, "claim", metric)


@dataclass(frozen=True)
class Causes:
    """What explains a miss: curated causes (``report.miss_causes``, keyed by :func:`cause_key`) and
    whether the profile's budget is below the paper's."""

    curated: Mapping[str, str]
    reduced_budget: bool

    @classmethod
    def of_profile(cls, curated: Mapping[str, str], profile: str) -> "Causes":
        """The causes of a profile's report: every profile but ``paper`` trains below the paper's budget."""
        return cls(curated, reduced_budget=profile != "paper")

    def explain(self, comparison: Judged, key: str) -> str:
        """Curated, ⚑, different models, better than the paper, budget, or unexplained, in that order."""
        if key in self.curated:
            return self.curated[key]
        if comparison.uncertain:
            return CAUSE_UNCERTAIN
        if not comparison.sided:
            return CAUSE_OTHER_SHAPE
        if better_than_paper(comparison):
            return CAUSE_BETTER
        return CAUSE_BUDGET if self.reduced_budget else CAUSE_UNEXPLAINED

    def explain_claim(self, key: str) -> str:
        """Why a claim of the paper does not hold in ours: curated (:func:`claim_key`), budget, or unexplained."""
        if key in self.curated:
            return self.curated[key]
        return CAUSE_BUDGET if self.reduced_budget else CAUSE_UNEXPLAINED


@dataclass(frozen=True)
class Tally:
    """Counts of one block (or of everything): numbers compared, within the tolerance, within the
    stricter band, and outside the tolerance on the better side of the paper's number."""

    compared: int = 0
    within_tolerance: int = 0
    within_strict: int = 0
    outside_better: int = 0

    @classmethod
    def of(cls, numbers: Sequence[Judged]) -> "Tally":
        return cls(len(numbers), sum(c.within_tolerance for c in numbers), sum(c.within_strict for c in numbers),
                   sum(not c.within_tolerance and better_than_paper(c) for c in numbers))

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.compared + other.compared, self.within_tolerance + other.within_tolerance,
                     self.within_strict + other.within_strict, self.outside_better + other.outside_better)

    def text(self) -> str:
        share = f" ({self.within_tolerance / self.compared:.0%})" if self.compared else ""
        outside = self.compared - self.within_tolerance
        return (f"{self.compared} numbers compared: {self.within_tolerance}{share} within the block's tolerance, "
                f"{self.within_strict} within ×{STRICT_FACTOR:g} (ratios) or ±{100 * STRICT_POINTS:g} pts (accuracies); "
                f"of the {outside} outside the tolerance, {self.outside_better} are ours better than the paper")
