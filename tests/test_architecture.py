"""The layering the README promises: shards/ needs neither Beam nor dlib, training/ never
needs Beam, pipeline/ never imports training/. Checked in fresh interpreters."""
import subprocess
import sys

import pytest


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("code,forbidden", [
    ("import shards.reader, shards.writer, shards.info, shards.checked, shards.source", {"apache_beam", "dlib", "training", "pipeline"}),
    ("import training.train, training.evaluate, training.visualize, training.pretrain", {"apache_beam", "dlib", "pipeline"}),
    ("import training.detect", {"apache_beam"}),
    ("import pipeline.run, pipeline.transforms, pipeline.cli", {"training", "torch"}),
])
def test_layers_import_only_what_they_need(code, forbidden):
    assert not (_loaded(code) & forbidden)
