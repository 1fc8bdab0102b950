"""Reading a YAML document field by field, every error naming the file, the line and the field
(``configs/sweeps/x.yaml:12: attack_options.smart.stepz: ...``).

:class:`YamlLines` maps each node of a document (by its path of keys and indices) to its line,
from ``yaml.compose``'s marks, and refuses a key given twice (which ``yaml.safe_load`` would
silently take the last of). :class:`FieldReader` reads typed fields of the parsed mapping
through it; a subclass says where a key is read from (:meth:`FieldReader.get`,
:meth:`FieldReader.at`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from skelrobust.errors import ConfigError, SkelRobustError

__all__ = ["FieldReader", "YamlLines"]


class YamlLines:
    """Line numbers of a YAML document's nodes by path, to name them in errors."""

    def __init__(self, path: str, text: str, root: str = "document") -> None:
        self.path, self.root = path, root
        self.lines: dict[tuple[Any, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ConfigError(f"{path}{line}: invalid YAML ({problem})") from None
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, at: tuple[Any, ...]) -> None:
        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
                if name in seen:
                    raise ConfigError(f"{self.path}:{key.start_mark.line + 1}: "
                                      f"{_dotted((*at, name))}: given twice")
                seen.add(name)
                self.lines[(*at, name)] = key.start_mark.line + 1
                self._walk(value, (*at, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*at, i))

    def error(self, at: tuple[Any, ...], message: str) -> ConfigError:
        """``FILE:LINE: FIELD: message`` for the node at ``at`` (or its nearest parent)."""
        known = at
        while known and known not in self.lines:
            known = known[:-1]
        line = self.lines.get(known, 1)
        return ConfigError(f"{self.path}:{line}: {_dotted(at) or self.root}: {message}")


def _dotted(at: tuple[Any, ...]) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class FieldReader:
    """Typed fields of a parsed YAML mapping; errors name their line (via ``where``)."""

    where: YamlLines

    def get(self, key: str) -> Any:
        raise NotImplementedError

    def at(self, key: str) -> tuple[Any, ...]:
        """The path ``key`` is read from (for its line)."""
        return (key,)

    def fail(self, at: tuple[Any, ...], message: str) -> ConfigError:
        return self.where.error(at, message)

    # ------------------------------------------------------------------ fields
    def names(self, key: str, check: Any) -> list[Any]:
        """A non-empty list whose items pass ``check(item, at)`` (which returns the item)."""
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(self.at(key), f"expected a non-empty list, got {value!r}")
        return [check(item, (*self.at(key), i)) for i, item in enumerate(value)]

    def section(self, key: str, kind: str, known: list[str]) -> dict[str, dict[str, Any]]:
        """A mapping from ``kind`` names (any of those ``known``) to mappings of options."""
        value = self.get(key)
        if not isinstance(value, dict):
            raise self.fail((key,), f"expected a mapping, got {type(value).__name__}")
        for name, options in value.items():
            if name not in known:
                raise self.fail((key, name), f"unknown {kind} {name!r}; available: "
                                f"{', '.join(sorted(map(str, known)))}")
            if not isinstance(options, dict):
                raise self.fail((key, name), f"expected a mapping of options, got {options!r}")
        return value

    def integer(self, key: str, low: int, value: Any = None, at: tuple[Any, ...] | None = None,
                optional: bool = False) -> int | None:
        """An integer >= ``low``: field ``key``, or ``value`` found at ``at``."""
        value = self.get(key) if at is None else value
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(at or (key,), f"expected an integer >= {low}, got {value!r}")
        return value

    def registered(self, kind: str, lookup: Callable[[str], Any]) -> Callable[..., Any]:
        """A check for :meth:`names`: ``lookup(name)``, whose error (an unknown name listed
        against the registered ones) is raised at the item's line."""
        def check(item: Any, at: tuple[Any, ...]) -> Any:
            if not isinstance(item, str):
                raise self.fail(at, f"expected a {kind} name, got {item!r}")
            try:
                return lookup(item)
            except SkelRobustError as err:
                raise self.fail(at, str(err)) from None
        return check
