"""The layering README promises, one way, each package importing only those below it:

    shards  <-  training  <-  evaluation  <-  reports  <-  detection  <-  noisetrace (CLI group, demo)
    shards  <-  pipeline  (Beam: the shard builder)

`training/` imports none of evaluation/, reports/, detection/; `pipeline/` never training/
or above; `reports/` and `detection/` may use pipeline's pure modules (keyframes, faces,
geometry, pairs, inputs, fetch), which need no Beam. Only `pipeline/` imports Beam (and
`shards.lock`, inside the functions that lock an object-store output). Checked
twice: from the source (every import, a lazy one inside a function too; names imported
for type checking only are not imports at run time) and in fresh interpreters (what is
loaded). And no two modules import each other, directly or round a longer circle."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from media import lavfi_video


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("code,forbidden", [
    ("import shards.reader, shards.writer, shards.info, shards.checked, shards.source", {"apache_beam", "dlib", "training", "pipeline"}),
    ("import training.train, training.pretrain, training.cli", {"apache_beam", "dlib", "pipeline", "evaluation", "reports", "detection"}),
    ("import evaluation.evaluate, evaluation.crossval, evaluation.compare, evaluation.cli", {"apache_beam", "dlib", "pipeline", "reports", "detection"}),
    ("import reports.visualize, reports.run_report, reports.cli", {"apache_beam", "dlib", "pipeline", "detection"}),
    ("import reports.detect_report", {"apache_beam", "detection"}),
    ("import detection.detect, detection.detect_batch, detection.verdict, pipeline.inputs, pipeline.fetch", {"apache_beam"}),
    ("import pipeline.run, pipeline.transforms, pipeline.cli", {"training", "torch", "evaluation", "reports", "detection"}),
])
def test_layers_import_only_what_they_need(code, forbidden):
    assert not (_loaded(code) & forbidden)


def test_detect_lists_and_reads_a_local_folder_without_beam(tmp_path):
    """`detect --input DIR` from the `detect` extra: listing the folder and readying each
    video for ffmpeg load no Beam (an install without it has none to load)."""
    (tmp_path / "clips" / "real").mkdir(parents=True)
    lavfi_video(str(tmp_path / "clips" / "real" / "a.mp4"), seconds=0.4)
    code = (f"from detection.detect_batch import list_inputs\nfrom pipeline.fetch import fetched\n"
            f"items = list_inputs((), {str(tmp_path / 'clips')!r})\n"
            f"assert [i.name for i in items] == ['real/a.mp4'], items\n"
            f"with fetched(items[0].path, 5.0) as (local, size): assert size > 0, size")
    assert "apache_beam" not in _loaded(code)


PACKAGES = ("noisetrace", "pipeline", "shards", "training", "evaluation", "reports", "detection", "bench")
ROOT = Path(__file__).resolve().parents[1]
# each package may import the ones of lower rank; pipeline/ stands beside training/ on shards/,
# and of it reports/ and detection/ may use only the modules that need no Beam (the runtime
# cases above load them)
RANK = {"shards": 0, "training": 1, "evaluation": 2, "reports": 3, "detection": 4, "noisetrace": 5, "bench": 6}
PURE_PIPELINE = {"pipeline.keyframes", "pipeline.faces", "pipeline.geometry", "pipeline.pairs", "pipeline.inputs", "pipeline.fetch",
                 "pipeline.splits"}
# shards.lock takes an object-store output's lock through Beam's FileSystems, imported in
# the functions that only build-shards' remote outputs reach (a trainer's output is local)
LAZY_BEAM = {"shards.lock"}


def _modules(root: Path) -> dict[str, Path]:
    return {".".join(p.relative_to(root).with_suffix("").parts): p for package in PACKAGES for p in (root / package).glob("*.py")}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path, *, run_time: bool) -> set[tuple[str, bool]]:
    """(module, at module level) for every import in the file: a lazy one inside a function
    too; with `run_time`, not those under `if TYPE_CHECKING:` (names for annotations only)."""
    found: set[tuple[str, bool]] = set()

    def visit(node: ast.AST, top: bool) -> None:
        if run_time and _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update((alias.name, top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update({(node.module, top)} | {(f"{node.module}.{alias.name}", top) for alias in node.names})
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def _project_imports(root: Path, *, run_time: bool = False) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports anywhere in its body (a lazy
    import inside a function closes a circle as surely as one at the top)."""
    modules = _modules(root)
    return {name: {m for m, _ in _imports(path, run_time=run_time) if m in modules and m != name}
            for name, path in modules.items()}


def _layer_breaks(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b` for every import that goes up or across the layers."""
    def allowed(src: str, dst: str) -> bool:
        a, b = src.split(".")[0], dst.split(".")[0]
        if a == b:
            return True
        if a == "pipeline":
            return b == "shards"
        if b == "pipeline":
            return RANK[a] >= RANK["reports"] and (a in ("noisetrace", "bench") or dst in PURE_PIPELINE)
        return RANK[b] < RANK[a]

    return sorted(f"{src} -> {dst}" for src, dsts in graph.items() for dst in dsts if not allowed(src, dst))


def test_layer_checker_finds_an_upward_import():
    assert _layer_breaks({"training.train": {"evaluation.evaluate", "shards.info"}, "reports.detect_report": {"detection.verdict"},
                          "detection.detect": {"pipeline.run", "pipeline.pairs", "reports.html_page"}, "pipeline.run": {"training.model"}}) == [
        "detection.detect -> pipeline.run", "pipeline.run -> training.model", "reports.detect_report -> detection.verdict",
        "training.train -> evaluation.evaluate"]


def test_every_package_imports_only_the_layers_below_it():
    graph = _project_imports(ROOT, run_time=True)
    assert "reports.detect_report" in graph and "detection.detect" in graph
    assert _layer_breaks(graph) == []


def test_only_pipeline_imports_beam():
    beam = {name: {top for m, top in _imports(path, run_time=True) if m.split(".")[0] == "apache_beam"}
            for name, path in _modules(ROOT).items() if not name.startswith("pipeline.")}
    assert sorted(name for name, tops in beam.items() if tops and name not in LAZY_BEAM) == []
    assert all(beam[name] == {False} for name in LAZY_BEAM), "shards.lock imports Beam only inside its object-store functions"


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
    graph = _project_imports(ROOT)
    assert "pipeline.run" in graph and "pipeline.graph" in graph["pipeline.dryrun"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
