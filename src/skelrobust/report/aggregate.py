"""Mean ± standard deviation over seeds, with failed cells counted rather than dropped.

A :class:`Stat` is what one table entry or one plotted point shows: the mean and the sample
standard deviation (``ddof=1``; NaN for a single value) of a metric over the cells that
differ only in their seed, how many values it has, and how many of those cells failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from skelrobust.report.collect import Cell

__all__ = ["Stat", "group", "summarize"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Stat:
    """``mean ± std`` of ``n`` values; ``failed``: cells of the group that failed."""

    mean: float
    std: float
    n: int
    failed: int = 0

    @classmethod
    def of(cls, values: Iterable[float | None], failed: int = 0) -> Stat:
        """The statistics of the finite ``values`` (``None`` and NaN are ignored)."""
        vals = [float(v) for v in values if v is not None and math.isfinite(v)]
        n = len(vals)
        mean = sum(vals) / n if n else math.nan
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
        return cls(mean, std, n, failed)

    def text(self, digits: int = 1, pm: str = " ± ") -> str:
        """``"85.3 ± 2.1"`` (several values), ``"85.3"`` (one), ``"failed"`` (only failures),
        ``"-"`` (no value); ``" (1 failed)"`` appended when some cells of the group failed."""
        if not self.n:
            return "failed" if self.failed else "-"
        out = f"{self.mean:.{digits}f}"
        if self.n > 1:
            out += f"{pm}{self.std:.{digits}f}"
        return out + (f" ({self.failed} failed)" if self.failed else "")


def group(cells: Iterable[Cell], key: Callable[[Cell], K | None]) -> dict[K, list[Cell]]:
    """Cells by ``key(cell)``, in first-seen order; cells whose key is ``None`` are left out."""
    out: dict[K, list[Cell]] = {}
    for cell in cells:
        k = key(cell)
        if k is not None:
            out.setdefault(k, []).append(cell)
    return out


def summarize(cells: Sequence[Cell], metric: str | Callable[[Cell], float | None]) -> Stat:
    """``metric`` (a :meth:`Cell.value` name or a function) over the cells that succeeded;
    the failed ones are counted in :attr:`Stat.failed`."""
    read = (lambda c: c.value(metric)) if isinstance(metric, str) else metric
    return Stat.of((read(c) for c in cells if c.ok), failed=sum(not c.ok for c in cells))
