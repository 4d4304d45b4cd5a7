"""What the wheel installs: top-level names that belong to this distribution
alone, every package of the tree listed, and stored topics that survive a move."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from eventsourcing.utils import resolve_topic

from cases.case import Case
from commands.topics import alias_topics

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_top_level_name_belongs_to_this_distribution_alone() -> None:
    # pip does not detect two distributions installing the same top-level package: check it here.
    ours = {*PROJECT["tool"]["setuptools"]["packages"], *PROJECT["tool"]["setuptools"]["py-modules"]}
    owners = importlib.metadata.packages_distributions()
    for name in {n.split(".")[0] for n in ours}:
        assert set(owners.get(name, [])) == {"minqing"}, (name, owners.get(name))


def test_every_package_of_the_tree_is_shipped() -> None:
    listed = set(PROJECT["tool"]["setuptools"]["packages"])
    tree = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert tree <= listed, tree - listed


def test_the_distribution_is_never_uploaded_by_mistake() -> None:
    assert "Private :: Do Not Upload" in PROJECT["project"]["classifiers"]


def test_old_topics_resolve_to_moved_classes() -> None:
    aliased = alias_topics([Case], "minqing_old.cases.case")
    assert "minqing_old.cases.case:Case.Registered" in aliased
    assert resolve_topic("minqing_old.cases.case:Case.Registered") is Case.Registered
    assert resolve_topic("minqing_old.cases.case:Case") is Case
