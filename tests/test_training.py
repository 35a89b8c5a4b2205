"""Training end to end on real (small) shards: learning, checkpoints, resume, DDP, CLI."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from shardgen import PLAIN, make_shards, read_jsonl
from evaluation.cli import evaluate
from reports.cli import visualize
from shards.source import open_shards
from training.checkpoint import load_detector
from training.cli import pretrain_denoiser, train_from_shards
from training.data import eval_loader, group_class_counts, train_loader
from training.predict import predict_pairs
from training.recipe import CLI_RECIPE
from training.train import TrainConfig, run_training

SIZE = 32


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 512, "val": 128, "test": 96}, shards_per_split=2, size=SIZE)


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("small")), {"train": 96, "val": 32}, shards_per_split=2, size=SIZE)


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    """A tiny detector trained briefly; the learning test and the tools share it."""
    run = str(tmp_path_factory.mktemp("run"))
    config = TrainConfig(shards=shards, output=run, preset="tiny", epochs=4, batch_size=32, lr=1e-3,
                         workers=0, input_size=SIZE, device="cpu")
    return run_training(config)


def _tiny(shards, output, **kw):
    return TrainConfig(shards=shards, output=output, preset="tiny", batch_size=16, lr=1e-3, workers=0,
                       input_size=SIZE, device="cpu", **kw)


def test_tiny_model_learns_noise_mismatch(trained):
    lines = read_jsonl(os.path.join(trained.output, "metrics.jsonl"))
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert set(lines[0]) == {"epoch", "loss", "val_accuracy", "val_auc", "pairs_per_s", "val_eer_threshold", "val_eer"}
    assert max(r["val_auc"] for r in lines) > 0.9
    assert lines[-1]["loss"] < lines[0]["loss"]
    config = json.load(open(os.path.join(trained.output, "config.json")))
    assert config["train"]["preset"] == "tiny" and config["model"]["depth"] == 4


def test_best_checkpoint_is_the_best_val_auc_then_accuracy(tmp_path):
    """MesoNet on visible fakes: val AUC reaches 1.0 epochs before accuracy does, and
    best.pt must be the epoch of best accuracy among the tied ones, not the first at 1.0."""
    shards = make_shards(str(tmp_path / "s"), {"train": 256, "val": 64}, shards_per_split=2, size=SIZE, visible_fakes=True)
    run = run_training(_tiny(shards, str(tmp_path / "r"), epochs=6, model="meso4"))
    assert len({r["val_accuracy"] for r in run.history if r["val_auc"] == 1.0}) > 1  # a tie to break
    best = max(run.history, key=lambda r: (r["val_auc"], r["val_accuracy"]))  # the first of equals, as training keeps
    saved = torch.load(tmp_path / "r" / "best.pt", map_location="cpu", weights_only=True)
    assert saved["metrics"] == best
    assert (saved["best_auc"], saved["best_accuracy"]) == (best["val_auc"], best["val_accuracy"])


def test_command_line_defaults_are_the_real_data_recipe_and_best_follows_the_last_epoch(small_shards, tmp_path):
    """train-from-shards with no recipe options trains on self-blended reals, 32 pairs a
    batch; there best.pt is the final epoch, whatever val says (its real fakes are few)."""
    run = tmp_path / "r"
    res = CliRunner().invoke(train_from_shards, ["--shards", small_shards, "--output", str(run), "--preset", "tiny",
                                                 "--epochs", "3", "--input-size", str(SIZE), "--workers", "0",
                                                 "--device", "cpu"])
    assert res.exit_code == 0, res.output
    train = json.load(open(run / "config.json"))["train"]
    assert {k: train[k] for k in CLI_RECIPE if k != "epochs"} == {k: v for k, v in CLI_RECIPE.items() if k != "epochs"}
    best, last = (torch.load(run / name, map_location="cpu", weights_only=True) for name in ("best.pt", "last.pt"))
    assert best["epoch"] == last["epoch"] == 3
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])


def test_checkpoints_load_weights_only_and_predict(trained, shards):
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(os.path.join(trained.output, name), map_location="cpu", weights_only=True)
        assert {"model", "optimizer", "epoch", "config", "rng"} <= set(ckpt)
        json.dumps(ckpt["config"])  # plain JSON types only
    model, config = load_detector(os.path.join(trained.output, "best.pt"), "cpu")
    batch = next(iter(eval_loader([f"{shards}/val/pairs-000000.tar"], batch_size=64)))
    faces = batch["face"].permute(0, 2, 3, 1).numpy()
    probs = predict_pairs(model, faces, batch["background"].permute(0, 2, 3, 1).numpy(), "cpu", batch_size=16)
    assert probs.shape == (64,) and np.all((probs >= 0) & (probs <= 1))
    assert np.mean((probs > 0.5) == (batch["cls"].numpy() == 1)) > 0.8


def test_compiled_training_matches_eager_and_saves_plain_weights(small_shards, tmp_path):
    """--compile changes the speed, not the run: the epoch's loss matches eager's to 1% (not
    exactly: Adam's normalised steps amplify the compiled kernels' rounding), and
    checkpoints hold the model's own keys, not those of torch.compile's wrapper."""
    eager = run_training(_tiny(small_shards, str(tmp_path / "eager"), epochs=1))
    compiled = run_training(_tiny(small_shards, str(tmp_path / "compiled"), epochs=1, compile=True))
    assert compiled.history[0]["loss"] == pytest.approx(eager.history[0]["loss"], rel=1e-2)
    saved = torch.load(tmp_path / "compiled" / "last.pt", map_location="cpu", weights_only=True)["model"]
    assert set(saved) == set(torch.load(tmp_path / "eager" / "last.pt", map_location="cpu", weights_only=True)["model"])


def test_resume_ends_where_an_uninterrupted_run_ends(small_shards, tmp_path):
    full = run_training(_tiny(small_shards, str(tmp_path / "full"), epochs=3))
    run_training(_tiny(small_shards, str(tmp_path / "split"), epochs=1))
    resumed = run_training(_tiny(small_shards, str(tmp_path / "split"), epochs=3, resume=True))
    assert [r["epoch"] for r in resumed.history] == [2, 3]
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k != "pairs_per_s"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(str(tmp_path / "split" / "metrics.jsonl"))) == strip(full.history)


def test_epoch_length_is_fixed_and_too_few_shards_is_an_error(small_shards):
    loader, batches = train_loader(small_shards, batch_size=16, epoch=0, workers=2, balance=False)
    got = list(loader)
    assert batches == 96 // 16 and len(got) == batches
    assert all(b["face"].dtype == torch.uint8 and b["face"].shape == (16, 3, SIZE, SIZE) for b in got)
    # Different epochs see different orders; the same epoch the same order.
    first = lambda e: next(iter(train_loader(small_shards, batch_size=16, epoch=e)[0]))["key"]  # noqa: E731
    assert first(0) == first(0) and first(0) != first(1)
    with pytest.raises(ValueError, match="fewer than ranks x workers"):
        train_loader(small_shards, batch_size=16, epoch=0, workers=3)


def test_too_few_pairs_for_a_batch_names_the_fix_in_one_short_line(tmp_path):
    root = make_shards(str(tmp_path), {"train": 20}, shards_per_split=2, size=16, fake_every=4)  # 5 fakes
    with pytest.raises(ValueError) as err:
        train_loader(root, batch_size=16, epoch=0, balance=True)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300 and "ShardSource" not in message
    assert "--batch-size 10" in message and "--no-balance" in message and "5 pairs of the smaller class" in message


def test_a_log_file_gets_plain_lines_not_progress_bar_frames(small_shards, tmp_path):
    log = tmp_path / "train.log"
    with open(log, "wb") as f:
        subprocess.run(["train-from-shards", "--shards", small_shards, "--output", str(tmp_path / "run"), "--preset", "tiny",
                        "--epochs", "2", "--batch-size", "16", "--workers", "0", "--input-size", str(SIZE), "--device", "cpu",
                        *PLAIN], stdout=f, stderr=subprocess.STDOUT, check=True, env={**os.environ, "NOISETRACE_PROGRESS_S": "0"})
    text = log.read_text()
    assert "\r" not in text and "it/s" not in text
    assert "epoch 1/2: batch 1/6, loss " in text and "epoch 2/2: batch 6/6, loss " in text  # 96 balanced pairs / 16
    epochs = [json.loads(line)["epoch"] for line in text.splitlines() if line.startswith("{")]
    assert epochs == [1, 2]


def test_balance_evens_out_classes(tmp_path):
    root = make_shards(str(tmp_path), {"train": 400}, shards_per_split=2, size=16, fake_every=4)  # 25% fake
    loader, batches = train_loader(root, batch_size=20, epoch=0, balance=True, shuffle_buffer=50)
    labels = torch.cat([b["cls"] for b in loader])
    assert batches == 2 * 100 // 20 and labels.numel() == 200
    assert 0.4 < labels.float().mean().item() < 0.6


def test_balance_by_group_evens_out_classes_within_groups_and_drops_one_class_groups(tmp_path):
    # pairs 0-299 in five groups of 15 fakes and 45 reals each; 300-399 in groups of one class
    group_of = lambda i, label: f"only-{label}" if i >= 300 else f"g{i % 5}"  # noqa: E731
    root = make_shards(str(tmp_path), {"train": 400}, shards_per_split=2, size=16, fake_every=4, group_of=group_of)
    counts = group_class_counts(open_shards(root).urls("train"))
    loader, batches = train_loader(root, batch_size=10, epoch=0, balance=True, group_counts=counts, shuffle_buffer=50)
    cells: dict[tuple[str, int], int] = {}
    for batch in loader:
        for meta, cls in zip(batch["meta"], batch["cls"].tolist()):
            cells[meta["group"], cls] = cells.get((meta["group"], cls), 0) + 1
    assert batches == 5 * 2 * 15 // 10 and sum(cells.values()) == 150
    assert {g for g, _ in cells} == {f"g{k}" for k in range(5)}  # the one-class groups train nothing
    for k in range(5):
        real, fake = cells.get((f"g{k}", 0), 0), cells.get((f"g{k}", 1), 0)
        assert 0.5 < real / max(fake, 1) < 2.0, (k, real, fake)
    with pytest.raises(ValueError) as err:  # no group holds both classes
        only = make_shards(str(tmp_path / "only"), {"train": 40}, shards_per_split=2, size=16, group_of=lambda i, label: label)
        train_loader(only, batch_size=10, epoch=0, balance=True, group_counts=group_class_counts(open_shards(only).urls("train")))
    assert "within groups" in str(err.value) and "\n" not in str(err.value)


def test_cli_evaluate_and_visualize_write_what_they_promise(trained, shards, tmp_path):
    runner = CliRunner()
    out = tmp_path / "eval"
    res = runner.invoke(evaluate, ["--checkpoint", f"{trained.output}/best.pt", "--shards", shards, "--split", "test",
                                   "--output", str(out), "--workers", "0", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    metrics = json.load(open(out / "metrics.json"))
    assert {"frame_accuracy", "frame_auc", "video_auc", "counts", "dataset_counts"} <= set(metrics)
    assert metrics["counts"] == {"real": 48, "fake": 48} and metrics["frames"] == 96
    assert set(metrics["dataset_counts"]) == {"synthetic-a", "synthetic-b"}
    assert metrics["videos"] == 48 and metrics["video_auc"] > 0.9
    assert len(read_jsonl(str(out / "predictions.jsonl"))) == 96
    with Image.open(out / "roc.png") as im:
        assert im.format == "PNG" and min(im.size) > 200
    fig = tmp_path / "fig.png"
    res = runner.invoke(visualize, ["--checkpoint", f"{trained.output}/best.pt", "--shards", shards, "--output", str(fig), "--rows", "4"])
    assert res.exit_code == 0, res.output
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 400


def test_bad_arguments_are_one_line_errors(trained, shards, tmp_path):
    runner = CliRunner()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    res = runner.invoke(evaluate, ["--checkpoint", str(junk), "--shards", shards, "--output", str(tmp_path / "e")])
    assert res.exit_code == 1 and "not a torch weights file" in res.output and "Traceback" not in res.output
    torch.save({"format": "noisetrace-dncnn", "extractor": {}, "config": {}}, tmp_path / "den.pt")
    res = runner.invoke(evaluate, ["--checkpoint", str(tmp_path / "den.pt"), "--shards", shards, "--output", str(tmp_path / "e")])
    assert res.exit_code == 1 and "not a noisetrace detector checkpoint" in res.output
    res = runner.invoke(train_from_shards, ["--shards", shards, "--output", str(tmp_path / "r"), "--resume"])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(train_from_shards, ["--shards", shards, "--output", str(tmp_path / "r"), "--preset", "huge"])
    assert res.exit_code == 2 and "huge" in res.output
    res = runner.invoke(evaluate, ["--checkpoint", f"{trained.output}/best.pt", "--shards", shards, "--split", "nope",
                                   "--output", str(tmp_path / "e")])
    assert res.exit_code == 1 and "no shards for split 'nope'" in res.output


def test_pretrained_denoiser_initialises_the_detector(small_shards, tmp_path):
    den = tmp_path / "den.pt"
    res = CliRunner().invoke(pretrain_denoiser, ["--shards", small_shards, "--output", str(den), "--preset", "tiny",
                                                 "--epochs", "1", "--batch-size", "16", "--patch-size", str(SIZE), "--workers", "0"])
    assert res.exit_code == 0, res.output
    result = run_training(_tiny(small_shards, str(tmp_path / "run"), epochs=1, init_denoiser=str(den)))
    config = json.load(open(os.path.join(result.output, "config.json")))
    assert config["init_denoiser_format"] == "noisetrace-dncnn"
    # The detector's extractor started from the denoiser: its first conv moved only by one epoch.
    den_w = torch.load(den, weights_only=True)["extractor"]["layers.0.weight"]
    fresh = run_training(_tiny(small_shards, str(tmp_path / "fresh"), epochs=1))
    trained_w = torch.load(os.path.join(result.output, "last.pt"), weights_only=True)["model"]["extractor.layers.0.weight"]
    fresh_w = torch.load(os.path.join(fresh.output, "last.pt"), weights_only=True)["model"]["extractor.layers.0.weight"]
    assert (trained_w - den_w).abs().mean() < (fresh_w - den_w).abs().mean()


def test_freeze_denoiser_trains_the_head_alone_and_survives_resume(small_shards, tmp_path):
    """--freeze-denoiser: the extractor's weights and BatchNorm statistics end bit-identical
    to --init-denoiser's, also across --resume, while the head learns; without it they move."""
    from training.noise_nets import DnCNN
    from training.weights import save_denoiser

    torch.manual_seed(1)
    den = str(tmp_path / "den.pt")
    save_denoiser(den, DnCNN(4, 16), {})
    given = torch.load(den, weights_only=True)["extractor"]
    last = lambda run: torch.load(os.path.join(run, "last.pt"), weights_only=True)  # noqa: E731
    extractor = lambda ckpt: {k.removeprefix("extractor."): v for k, v in ckpt["model"].items() if k.startswith("extractor.")}  # noqa: E731
    frozen, free = str(tmp_path / "frozen"), str(tmp_path / "free")
    run_training(_tiny(small_shards, frozen, epochs=1, init_denoiser=den, freeze_denoiser=True))
    head_after_one = last(frozen)["model"]["head.classifier.1.weight"]
    run_training(_tiny(small_shards, frozen, epochs=2, resume=True))  # the saved config keeps it frozen
    run_training(_tiny(small_shards, free, epochs=2, init_denoiser=den))
    ckpt = last(frozen)
    assert ckpt["config"]["train"]["freeze_denoiser"] is True and ckpt["epoch"] == 2
    assert set(extractor(ckpt)) == set(given) and all(torch.equal(extractor(ckpt)[k], v) for k, v in given.items())
    assert not torch.equal(ckpt["model"]["head.classifier.1.weight"], head_after_one)  # the head learns
    moved = extractor(last(free))
    assert not torch.equal(moved["layers.0.weight"], given["layers.0.weight"])
    assert not torch.equal(moved["layers.3.running_mean"], given["layers.3.running_mean"])
    with pytest.raises(ValueError, match="--freeze-denoiser .* give --init-denoiser"):
        run_training(_tiny(small_shards, str(tmp_path / "bad"), epochs=1, freeze_denoiser=True))


@pytest.mark.skipif(importlib.util.find_spec("training.selfblend") is None, reason="training/selfblend.py not written yet")
def test_self_blend_turns_real_pairs_into_fakes(small_shards, tmp_path):
    from training.train import _apply_self_blend

    faces = torch.randint(0, 256, (8, 3, SIZE, SIZE), dtype=torch.uint8)
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    out, new = _apply_self_blend(faces, labels, 0.5, torch.Generator().manual_seed(0))
    changed = (out != faces).flatten(1).any(1)
    assert new.sum() == 2 + 4 and torch.equal(changed, (new == 1) & (labels == 0))
    result = run_training(_tiny(small_shards, str(tmp_path / "sb"), epochs=1, self_blend=0.5))
    assert result.history[0]["epoch"] == 1


@pytest.mark.parametrize("frozen", [False, True], ids=["images", "cached-residuals"])
def test_self_blend_mask_draws_native_windows_in_their_face_square(tmp_path, frozen):
    """--self-blend-mask face-square (the default) blends a native window where its face square's
    ellipse lies, so the run differs from --self-blend-mask patch; on area squares, which are
    their whole face square, the two are the same run. Both the streamed images and the
    frozen extractor's cached bank of blends follow the option."""
    from training.noise_nets import DnCNN
    from training.weights import save_denoiser

    den = str(tmp_path / "den.pt")
    torch.manual_seed(1)
    save_denoiser(den, DnCNN(4, 16), {})
    frozen_kw = {"init_denoiser": den, "freeze_denoiser": True, "residual_cache": str(tmp_path / "cache")} if frozen else {}
    losses = {}
    for layout in ("area", "native"):
        root = make_shards(str(tmp_path / layout), {"train": 64, "val": 32}, size=SIZE, native=layout == "native")
        for mask in ("face-square", "patch"):
            result = run_training(_tiny(root, str(tmp_path / f"{layout}-{mask}"), epochs=1, fake_source="self-blend",
                                        self_blend=0.5, self_blend_mask=mask, **frozen_kw))
            losses[layout, mask] = result.history[0]["loss"]
    assert losses["area", "face-square"] == losses["area", "patch"]
    assert losses["native", "face-square"] != losses["native", "patch"]
    with pytest.raises(ValueError, match="self-blend mask must be one of"):
        run_training(_tiny(root, str(tmp_path / "bad"), fake_source="self-blend", self_blend=0.5, self_blend_mask="ellipse"))


def test_fake_source_self_blend_trains_on_reals_alone(small_shards, tmp_path):
    loader, batches = train_loader(small_shards, batch_size=8, epoch=0, reals_only=True)
    labels = torch.cat([b["cls"] for b in loader])
    assert labels.numel() == batches * 8 == 48 and labels.max() == 0  # 48 of the 96 train pairs are real
    result = run_training(_tiny(small_shards, str(tmp_path / "sbi"), epochs=1, fake_source="self-blend", self_blend=0.5))
    assert 0.0 <= result.history[0]["val_auc"] <= 1.0  # validation still scores the shards' own fakes
    with pytest.raises(ValueError, match="--self-blend must be between 0 and 1"):
        run_training(_tiny(small_shards, str(tmp_path / "none"), fake_source="self-blend"))


def test_recompress_reencodes_face_and_background_together():
    from training.recompress import recompress_pairs

    faces = torch.randint(0, 256, (16, 3, SIZE, SIZE), dtype=torch.uint8)
    out_f, out_b = recompress_pairs(faces, faces.clone(), 0.5, torch.Generator().manual_seed(0))
    changed = (out_f != faces).flatten(1).any(1)
    assert 0 < changed.sum() < 16 and torch.equal(out_f, out_b)  # one quality per pair: same input, same output
    again, _ = recompress_pairs(faces, faces.clone(), 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(again, out_f)


DDP_DRIVER = """
import json, os, sys
sys.path.insert(0, {tests!r})
from training.train import TrainConfig, run_training
r = run_training(TrainConfig(shards={shards!r}, output={out!r}, preset="tiny", epochs=2, batch_size=8, lr=1e-3,
                             workers=1, input_size={size}, device="cpu"))
with open(os.path.join({out!r}, "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump(r.history, f)
"""


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_two_process_ddp_on_cpu_agrees(small_shards, tmp_path):
    out = str(tmp_path / "ddp")
    os.makedirs(out)
    driver = tmp_path / "driver.py"
    driver.write_text(DDP_DRIVER.format(tests=os.path.dirname(__file__), shards=small_shards, out=out, size=SIZE))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["torchrun", "--nproc_per_node", "2", "--master_port", "29517", str(driver)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.load(open(os.path.join(out, f"rank{r}.json"))) for r in (0, 1))
    assert len(r0) == 2 and r0 == r1  # loss, val metrics and pairs/s are all reduced across ranks
    assert len(read_jsonl(os.path.join(out, "metrics.jsonl"))) == 2 and os.path.exists(os.path.join(out, "best.pt"))


def test_cli_module_imports_without_torch():
    """`noisetrace --help` on a pipeline-only install must not need torch."""
    code = "import sys, training.cli; assert 'torch' not in sys.modules and 'webdataset' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_pretrain_denoiser_from_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "too_small.png")
    out = tmp_path / "w" / "den.pt"
    res = CliRunner().invoke(pretrain_denoiser, ["--images", str(tmp_path), "--output", str(out), "--preset", "tiny",
                                                 "--epochs", "2", "--batch-size", "2", "--patch-size", "32", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert res.output.count("noise MSE") == 2
    from training.noise_nets import DnCNN
    from training.weights import load_extractor_weights
    assert load_extractor_weights(DnCNN(4, 16), str(out)) == "noisetrace-dncnn"
    res = CliRunner().invoke(pretrain_denoiser, ["--output", str(out)])
    assert res.exit_code == 2 and "exactly one of --shards or --images" in res.output
