"""Exception types of skelrobust.

Every error a user can cause (bad input, unknown names, corrupt files) raises a
subclass of :class:`SkelRobustError`, whose message names the argument or file
and what was expected. The CLI turns these into one line on stderr.
"""

from __future__ import annotations


class SkelRobustError(Exception):
    """Base class of every error raised on purpose by skelrobust."""


class ShapeError(SkelRobustError, ValueError):
    """A tensor or array does not have the expected shape."""


class InvalidMotionError(SkelRobustError, ValueError):
    """Motion data with NaN/infinite coordinates, or too few frames."""


class LayoutError(SkelRobustError, ValueError):
    """A skeleton layout is unknown, malformed, or does not match the data."""


class UnknownNameError(SkelRobustError, KeyError):
    """A registry lookup (dataset, model, layout, attack) failed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(SkelRobustError, ValueError):
    """A checkpoint file is missing, corrupt, or does not match its model."""


class DatasetFormatError(SkelRobustError, ValueError):
    """A dataset file is truncated, corrupt or mis-encoded (names file and line)."""


class DatasetNotFoundError(SkelRobustError, FileNotFoundError):
    """A dataset root is missing or holds no files of the expected kind."""


class ConfigError(SkelRobustError, ValueError):
    """A configuration value or file is invalid."""


def unknown_name(kind: str, name: str, available: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build the standard error for a failed registry lookup."""
    return UnknownNameError(
        f"unknown {kind} {name!r}; available: {', '.join(sorted(available))}"
    )


class QueryBudgetError(SkelRobustError, RuntimeError):
    """A query to a victim past a sample's query budget (refused, never answered)."""


class VictimError(SkelRobustError, RuntimeError):
    """A victim failed while being queried, or answered something it cannot answer."""
