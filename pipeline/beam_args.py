"""What `build-shards` hands Beam: only options Beam's own `PipelineOptions` define.

click passes on every option it does not know (`--runner`, `--project`, `--temp_location`,
...), and Beam drops, with a log line nobody reads, every one *it* does not know: a misspelt
`--min-frame-per-video 8` would build without the extra frames and exit 0. So the whole
command line is parsed first with the parser Beam itself builds from every
`PipelineOptions` subclass (ours, `BuildShardsOptions`, among them), and anything left over
is click's usual usage error, naming the option and the closest real one.
"""
from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

import click
from apache_beam.options.pipeline_options import PipelineOptions

import pipeline.options  # noqa: F401 - defines BuildShardsOptions, so Beam's parser knows build-shards' options


def beam_parser() -> argparse.ArgumentParser:
    """The parser Beam's `PipelineOptions` parse flags with, caught through the hook it
    offers runners to add their own (so the set of subclasses is Beam's choice, not ours)."""
    caught: list[argparse.ArgumentParser] = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=caught.append)
    return caught[0]


def refuse_unknown(argv: Sequence[str], ctx: click.Context) -> None:
    """Raise click's usage error for the first token of `argv` no PipelineOptions define:
    an unknown option (`NoSuchOption`, with the closest known one of the ~200 Beam and
    build-shards flags, not click's three), or a stray value, such as `true` after a Beam
    switch that takes none."""
    parser = beam_parser()
    _, unknown = parser.parse_known_args(list(argv))
    for token in unknown:
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            known = parser._option_string_actions  # argparse's own table of flags  # noqa: SLF001
            raise click.NoSuchOption(name, possibilities=difflib.get_close_matches(name, known, n=1), ctx=ctx)
        raise click.UsageError(f"Got unexpected extra argument ({token})", ctx)
