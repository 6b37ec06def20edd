"""Print the operator's module graph: each module and the project modules it imports.

    .venv/bin/python hack/module-graph.py            # the working tree
    .venv/bin/python hack/module-graph.py DIR        # another source root (e.g. a `git archive` of a ref)

grimp (import-linter's engine) builds the graph, so this is what `make lint` checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

PACKAGE = "staticsite_operator"


def main(root: Path) -> None:
    sys.path.insert(0, str(root))
    graph = grimp.build_graph(PACKAGE)
    for module in sorted(m for m in graph.modules if m.startswith(PACKAGE + ".")):
        deps = sorted(d.removeprefix(PACKAGE + ".") for d in graph.find_modules_directly_imported_by(module)
                      if d.startswith(PACKAGE + "."))
        print(f"{module.removeprefix(PACKAGE + '.')}: {', '.join(deps)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "operator")
