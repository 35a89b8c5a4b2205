"""`noisetrace`: the one command group that holds every command.

Commands are imported only when called, so a GPU node with only the `training` extra can
run `noisetrace train-from-shards` without Beam or dlib installed.
"""
from __future__ import annotations

import importlib

import click

COMMANDS = {
    "build-shards": "pipeline.cli:build_shards",
    "train-from-shards": "training.cli:train_from_shards",
    "pretrain-denoiser": "training.cli:pretrain_denoiser",
    "evaluate": "evaluation.cli:evaluate",
    "compare": "evaluation.cli:compare",
    "crossval": "evaluation.cli:crossval",
    "detect": "detection.detect:detect",
    "visualize": "reports.cli:visualize",
    "report": "reports.cli:report",
    "demo": "noisetrace.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as e:
            return _unavailable(name, e.name or str(e))


def _unavailable(name: str, missing: str) -> click.Command:
    """Stands in for a command whose extra is not installed, so `--help` still lists it."""
    message = f"'{name}' needs {missing}, which is not installed: pip install 'noisetrace[all]' (or the matching extra)"

    def fail(**_: object) -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=fail, help=f"[unavailable: needs {missing}]",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=LazyGroup, help="Deepfake noise-trace detection: build pair shards, train, evaluate, detect.")
def main() -> None:
    pass
