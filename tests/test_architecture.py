"""The layering the README promises: shards/ needs neither Beam nor dlib, training/ never
needs Beam, pipeline/ never imports training/. Checked in fresh interpreters. And no two
modules import each other, directly or round a longer circle."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("code,forbidden", [
    ("import shards.reader, shards.writer, shards.info, shards.checked, shards.source", {"apache_beam", "dlib", "training", "pipeline"}),
    ("import training.train, training.pretrain, evaluation.evaluate, reports.visualize", {"apache_beam", "dlib", "pipeline"}),
    ("import detection.detect", {"apache_beam"}),
    ("import pipeline.run, pipeline.transforms, pipeline.cli", {"training", "torch"}),
])
def test_layers_import_only_what_they_need(code, forbidden):
    assert not (_loaded(code) & forbidden)


PACKAGES = ("noisetrace", "pipeline", "shards", "training", "evaluation", "reports", "detection", "bench")


def _project_imports(root: Path) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports anywhere in its body (a lazy
    import inside a function closes a circle as surely as one at the top)."""
    modules = {".".join(p.relative_to(root).with_suffix("").parts): p
               for package in PACKAGES for p in (root / package).glob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_the_projects_modules():
    graph = _project_imports(Path(__file__).resolve().parents[1])
    assert "pipeline.run" in graph and "pipeline.graph" in graph["pipeline.dryrun"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
