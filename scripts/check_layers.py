"""The layers point one way (docs/architecture.md): a module may import its own
package and the layers below it, never one above, and the packages of one
layer never import each other in a cycle. Run by scripts/test.

    cases ← reference ← config, storage ← commands ← projections, replay, streams, security,
    open311, demo ← api, web ← service ← cli

`config` (settings) and `storage` (the read-side SQL stores) are neutral: every
layer from `commands` up may use them. `reference` is the operator's data with
its loader. Within a layer a package may import another one way, never both ways.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS: list[set[str]] = [
    {"cases"},
    {"reference"},
    {"config", "storage"},
    {"commands"},
    {"projections", "replay", "streams", "security", "open311", "demo"},
    {"api", "web"},
    {"service"},
    {"cli"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def top(module: str) -> str:
    return module.split(".", 1)[0]


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(top(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(top(node.module))
    return {name for name in found if name in LEVEL}


def check() -> list[str]:
    problems: list[str] = []
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        owner = top(".".join(relative.with_suffix("").parts))
        if owner not in LEVEL:
            continue  # tests, bench, scripts, docs examples may import anything
        for target in imports(path) - {owner}:
            edges[owner].add(target)
            if LEVEL[target] > LEVEL[owner]:
                problems.append(f"{relative}: {owner} (layer {LEVEL[owner]}) imports {target} (layer {LEVEL[target]})")
    for a, targets in edges.items():
        for b in targets:
            if LEVEL[a] == LEVEL[b] and a in edges.get(b, set()) and a < b:
                problems.append(f"{a} and {b} import each other")
    return problems


if __name__ == "__main__":
    found = check()
    for line in found:
        print(line, file=sys.stderr)
    print(f"layers: {len(found)} violation(s)" if found else "layers: ok")
    sys.exit(1 if found else 0)
