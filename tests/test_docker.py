"""The images in docker/ agree with setup.py: base image versions, extras, entrypoints.

No Docker engine is needed: the Dockerfiles and setup.py are read as text. A worker image
whose Beam or Python differs from the submitting SDK's fails on Dataflow only after the
workers start, which is what these checks catch first.
"""
import ast
import json
import os
import re

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_py() -> tuple[dict[str, list[str]], dict[str, object]]:
    """setup.py's requirement lists (CORE, PIPELINE, ...) and its setup() keywords."""
    tree = ast.parse(open(os.path.join(REPO, "setup.py"), encoding="utf-8").read())
    lists: dict[str, list[str]] = {}

    def value(node):
        if isinstance(node, ast.List):
            out = []
            for elt in node.elts:
                out += lists[elt.value.id] if isinstance(elt, ast.Starred) else [value(elt)]
            return out
        if isinstance(node, ast.Name):
            return lists[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return value(node.left) + value(node.right)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        return ast.literal_eval(node)

    setup_kwargs: dict[str, object] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            lists[stmt.targets[0].id] = value(stmt.value)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "id", "") == "setup":
            setup_kwargs = {kw.arg: value(kw.value) for kw in stmt.value.keywords
                            if kw.arg in ("python_requires", "extras_require", "entry_points")}
    return lists, setup_kwargs


def _instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = open(os.path.join(REPO, "docker", name), encoding="utf-8").read()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            op, _, args = line.strip().partition(" ")
            out.append((op.upper(), " ".join(args.split())))
    return out


def _one(instructions, op: str) -> str:
    (args,) = [a for o, a in instructions if o == op]
    return args


def _pins(requirements: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name: Requirement(r) for r in requirements}


SETUP_LISTS, SETUP = _setup_py()


def test_pipeline_image_is_the_beam_sdk_image_of_setup_pys_beam_and_python():
    ins = _instructions("pipeline.Dockerfile")
    base = re.fullmatch(r"apache/beam_python(\d+\.\d+)_sdk:(\S+)", _one(ins, "FROM"))
    assert base, "base must be apache/beam_python<X.Y>_sdk:<beam version>"
    python, beam = base.groups()
    (spec,) = _pins(SETUP_LISTS["PIPELINE"])["apache-beam"].specifier
    assert spec.operator == "==" and spec.version == beam, "Beam in the image must equal setup.py's pin"
    assert python in SpecifierSet(SETUP["python_requires"])
    assert python == "3.11"  # the Python this project submits jobs from (README, CI)


def test_pipeline_image_installs_the_pipeline_extra_and_keeps_beams_entrypoint():
    ins = _instructions("pipeline.Dockerfile")
    runs = " ".join(a for o, a in ins if o == "RUN")
    assert 'pip install ".[pipeline]"' in runs
    copied = {a.split()[0] for o, a in ins if o == "COPY"}
    assert {"shards", "pipeline"} <= copied and "training" not in copied
    assert json.loads(_one(ins, "ENTRYPOINT")) == ["/opt/apache/beam/boot"]


def test_trainer_image_is_cuda_pytorch_with_only_the_training_extra():
    ins = _instructions("trainer.Dockerfile")
    base = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+)\.\d+-cudnn\d+-runtime", _one(ins, "FROM"))
    assert base, "base must be a CUDA runtime pytorch/pytorch image"
    torch_version, cuda_major = base.groups()
    assert torch_version in _pins(SETUP_LISTS["TRAINING"])["torch"].specifier
    assert int(cuda_major) >= 12
    runs = " ".join(a for o, a in ins if o == "RUN")
    assert 'pip install --constraint /tmp/torch-pin.txt ".[training]"' in runs
    assert "[pipeline]" not in runs and "[all]" not in runs
    copied = {a.split()[0] for o, a in ins if o == "COPY"}
    assert "pipeline" not in copied and "noisetrace" not in copied
    assert {"shards", "training", "evaluation", "reports"} <= copied  # evaluate and visualize run there too
    training = set(_pins(SETUP_LISTS["TRAINING"])) | set(_pins(SETUP_LISTS["CORE"]))
    assert not training & {"apache-beam", "dlib-bin", "dlib", "ffmpeg-python", "imageio-ffmpeg"}
    everything = " ".join(a for _, a in ins)
    assert "apache-beam" not in everything and "dlib" not in everything


def test_trainer_entrypoint_is_the_console_script_and_runs_non_root():
    ins = _instructions("trainer.Dockerfile")
    (entry,) = json.loads(_one(ins, "ENTRYPOINT"))
    scripts = dict(s.split("=", 1) for s in SETUP["entry_points"]["console_scripts"])
    assert entry == "train-from-shards" and entry in scripts
    user = [a for o, a in ins if o == "USER"][-1]
    assert user not in ("root", "0")
