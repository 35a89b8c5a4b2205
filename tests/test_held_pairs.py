"""A split decoded once and dealt from memory (`--in-memory-mb`): the streamed batches and
weights, without re-reading the shards; held only when it fits the budget."""
import numpy as np
import pytest
import torch

from shardgen import make_shards, read_jsonl
from shards.info import split_lengths
from shards.schema import CLS_REAL
from training.data import held_nbytes, hold_decoded, train_loader
from training.train import TrainConfig, run_training

SIZE = 32
PAIR_BYTES = 2 * SIZE * SIZE * 3  # face and background, uint8


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(str(tmp_path_factory.mktemp("shards")), {"train": 96, "val": 32}, shards_per_split=2, size=SIZE)


def _batches(loader):
    return [(b["key"], b["face"], b["background"], b["cls"]) for b in loader]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("reals_only", [False, True])
def test_held_pairs_deal_exactly_the_streamed_batches(shards, workers, reals_only):
    lengths = split_lengths(shards, "train")
    held = hold_decoded(lengths, 2**30, (lambda s: s["cls"] == CLS_REAL) if reals_only else None)
    assert sum(map(len, held.values())) == (48 if reals_only else 96)
    decoded_faces = {s["key"]: s["face"].copy() for pairs in held.values() for s in pairs}
    for epoch in (0, 1):
        kwargs = dict(batch_size=8, epoch=epoch, seed=3, workers=workers, balance=True, reals_only=reals_only, shuffle_buffer=40)
        streamed, n = train_loader(shards, **kwargs)
        dealt, m = train_loader(shards, held=held, **kwargs)
        a, b = _batches(streamed), _batches(dealt)
        assert n == m and len(a) == len(b) == n
        for (ka, fa, ba, ca), (kb, fb, bb, cb) in zip(a, b):
            assert ka == kb and torch.equal(fa, fb) and torch.equal(ba, bb) and torch.equal(ca, cb)
    # flips and batching built new arrays: the held pairs are still as decoded
    assert all(np.array_equal(s["face"], decoded_faces[s["key"]]) for pairs in held.values() for s in pairs)


def test_a_split_is_held_only_when_it_fits_the_budget(shards):
    lengths = split_lengths(shards, "train")
    held = hold_decoded(lengths, 96 * PAIR_BYTES)
    assert held is not None and set(held) == set(lengths) and held_nbytes(held) == 96 * PAIR_BYTES
    reals = hold_decoded(lengths, 48 * PAIR_BYTES, lambda s: s["cls"] == CLS_REAL)
    assert reals is not None and held_nbytes(reals) == 48 * PAIR_BYTES  # only the pairs kept count
    assert hold_decoded(lengths, 96 * PAIR_BYTES - 1) is None  # over by a byte
    assert hold_decoded(lengths, 0) is None


def _run(shards, output, **kw):
    return TrainConfig(shards=shards, output=str(output), preset="tiny", batch_size=8, lr=1e-3, workers=0, input_size=SIZE,
                       device="cpu", **kw)


def _weights(run):
    return torch.load(run / "last.pt", weights_only=True)["model"]


def _without_speed(rows):
    return [{k: v for k, v in r.items() if k != "pairs_per_s"} for r in rows]


def test_held_training_ends_with_the_streamed_weights_and_resumes_across_modes(shards, tmp_path, capfd):
    """The default recipe (reals self-blended afresh each batch) trained from memory ends
    where streaming ends; a run started streaming and resumed from memory does too."""
    recipe = dict(fake_source="self-blend", self_blend=0.5, epochs=2)
    held = run_training(_run(shards, tmp_path / "held", **recipe))
    err = capfd.readouterr().err
    assert "train: 48 pairs held in memory (0.3 MB), decoded once" in err and "val: 32 pairs held in memory" in err
    streamed = run_training(_run(shards, tmp_path / "streamed", in_memory_mb=0, **recipe))
    assert "train: streamed from the shards every epoch" in capfd.readouterr().err
    assert _without_speed(held.history) == _without_speed(streamed.history)
    a, b = _weights(tmp_path / "held"), _weights(tmp_path / "streamed")
    assert all(torch.equal(a[k], b[k]) for k in a)

    run_training(_run(shards, tmp_path / "switched", in_memory_mb=0, **{**recipe, "epochs": 1}))
    capfd.readouterr()
    resumed = run_training(_run(shards, tmp_path / "switched", resume=True, **recipe))
    assert "train: 48 pairs held in memory" in capfd.readouterr().err  # --in-memory-mb is not one of the saved options
    assert [r["epoch"] for r in resumed.history] == [2]
    assert _without_speed(read_jsonl(str(tmp_path / "switched" / "metrics.jsonl"))) == _without_speed(held.history)
    c = _weights(tmp_path / "switched")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_a_train_split_over_the_budget_streams_while_val_is_held(tmp_path, capfd):
    root = make_shards(str(tmp_path / "shards"), {"train": 384, "val": 32}, shards_per_split=2, size=SIZE)  # 2.25 MB of train
    run_training(_run(root, tmp_path / "run", epochs=1, in_memory_mb=1))
    err = capfd.readouterr().err
    assert "train: streamed from the shards every epoch (would pass --in-memory-mb 1)" in err
    assert "val: 32 pairs held in memory" in err
