"""docs/cli.md is generated from the click commands (`noisetrace.clidoc`); these tests fail
when an option or command changed and the reference was not regenerated."""
from pathlib import Path

import click

from noisetrace.cli import COMMANDS
from noisetrace.clidoc import REGENERATE, _command, render

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_every_command_and_option_is_in_its_section():
    sections = {part.split("\n", 1)[0]: part for part in render().split("\n## ")[1:]}
    assert set(sections) == set(COMMANDS)
    for name, target in COMMANDS.items():
        for param in _command(target).params:
            if isinstance(param, click.Option):
                for flag in param.opts + param.secondary_opts:
                    assert f"{flag} " in sections[name] or f"{flag}`" in sections[name], (name, flag)


def test_docs_cli_md_is_up_to_date():
    assert CLI_MD.read_text(encoding="utf-8") == render(), f"docs/cli.md is stale: regenerate it with `{REGENERATE}`"
