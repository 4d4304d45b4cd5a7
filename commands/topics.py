"""Stored events name their class by module path (`cases.case:Case.Registered`),
so moving a module would orphan every stored event of it. Before such a move,
alias the old paths to the moved classes; rows are never rewritten."""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.utils import register_topic


def alias_topics(classes: Iterable[type], old_module: str) -> list[str]:
    """Registers `old_module:<qualname>` for each class (and its nested event classes)."""
    aliased = []
    for cls in classes:
        for inner in (cls, *_nested(cls)):
            topic = f"{old_module}:{inner.__qualname__}"
            register_topic(topic, inner)
            aliased.append(topic)
    return aliased


def _nested(cls: type) -> list[type]:
    found = []
    for value in vars(cls).values():
        if isinstance(value, type) and value.__qualname__.startswith(cls.__qualname__ + "."):
            found += [value, *_nested(value)]
    return found
