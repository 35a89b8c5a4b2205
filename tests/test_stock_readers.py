"""Stock readers read the shards as build-shards writes them, with no noisetrace code.

The README promises that a shard root needs nothing of this project to be read: plain
WebDataset, Hugging Face `datasets` and timm's WebDataset reader. Each is checked here on a
real shard root against what noisetrace's own reader makes of the same shards.

timm cannot be imported on this project's machines: it imports torchvision at `import
timm`, and PyPI's Linux torchvision wheels are CUDA builds whose `_C.so` links
`libc10_cuda.so`/`libtorch_cuda.so`, which the CPU torch wheel lacks, so `import
torchvision` fails ("operator torchvision::nms does not exist"). Its test skips there; the
`_info.json` test below checks the fields and file layout timm's `reader_wds.py` reads.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import webdataset as wds

from shards.info import FAILURES_NAME, read_info, split_urls
from shards.reader import iter_pairs
from shards.schema import SPLITS
from shardgen import make_shards

COUNTS = {"train": 6, "val": 4, "test": 2}
SIZE = 16


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    """A shard root as build-shards leaves it: splits, `_info.json` and `failures.jsonl`."""
    root = make_shards(str(tmp_path_factory.mktemp("stock")), COUNTS, shards_per_split=2, size=SIZE)
    with open(os.path.join(root, FAILURES_NAME), "w", encoding="utf-8") as f:
        f.write(json.dumps({"video": "x.mp4", "reason": "no_face", "frame_index": None, "detail": ""}) + "\n")
    return root


@pytest.fixture(scope="module")
def expected(root) -> dict[str, dict]:
    """{key: pair} as noisetrace's own reader decodes every split."""
    return {p["key"]: p for split in SPLITS for p in iter_pairs(split_urls(root, split))}


@pytest.fixture(scope="module")
def extras_root(tmp_path_factory) -> str:
    """A shard root as `build-shards --backgrounds 2` leaves it: 0, 1 or 2 extra squares a pair."""
    return make_shards(str(tmp_path_factory.mktemp("stock-extras")), COUNTS, shards_per_split=2, size=SIZE, backgrounds=2)


def _check(key: str, face, background, cls: int, meta: dict, expected: dict[str, dict]) -> None:
    pair = expected[key]
    assert np.array_equal(np.asarray(face.convert("RGB")), pair["face"])
    assert np.array_equal(np.asarray(background.convert("RGB")), pair["background"])
    assert (cls, meta) == (pair["cls"], pair["meta"])


def test_webdataset_reads_shards_with_its_stock_decoders(root, expected):
    for split in SPLITS:
        samples = list(wds.WebDataset(split_urls(root, split), shardshuffle=False).decode("pil"))
        assert len(samples) == COUNTS[split]
        for s in samples:
            _check(s["__key__"], s["face.png"], s["background.png"], s["cls"], s["json"], expected)


def test_old_shards_decode_with_no_extra_backgrounds(expected):
    assert all(p["extra_backgrounds"] == [] and "extra_background_boxes" not in p["meta"] for p in expected.values())


def test_webdataset_reads_extra_backgrounds(extras_root):
    """`<key>.background1.png`, ... are plain PNG members: stock WebDataset decodes them, and
    they are what noisetrace's reader lists as `extra_backgrounds`, one per json box."""
    ours = {p["key"]: p for split in SPLITS for p in iter_pairs(split_urls(extras_root, split))}
    seen = set()
    for split in SPLITS:
        for s in wds.WebDataset(split_urls(extras_root, split), shardshuffle=False).decode("pil"):
            pair = ours[s["__key__"]]
            _check(s["__key__"], s["face.png"], s["background.png"], s["cls"], s["json"], ours)
            n = len(s["json"]["extra_background_boxes"])
            assert sorted(k for k in s if k.startswith("background") and k != "background.png") == [
                f"background{i}.png" for i in range(1, n + 1)]
            got = [np.asarray(s[f"background{i}.png"].convert("RGB")) for i in range(1, n + 1)]
            assert len(pair["extra_backgrounds"]) == n
            assert all(np.array_equal(a, b) for a, b in zip(got, pair["extra_backgrounds"]))
            seen.add(n)
    assert seen == {0, 1, 2}


def test_hugging_face_datasets_reads_the_shard_root(root, expected, tmp_path):
    from datasets import load_dataset

    # The root as it is: split directories become splits ("val" is named "validation"),
    # `_info.json` and `failures.jsonl` beside them are left alone.
    ds = load_dataset(root, cache_dir=str(tmp_path))
    assert {name: d.num_rows for name, d in ds.items()} == {"train": 6, "validation": 4, "test": 2}
    for d in ds.values():
        for s in d:
            _check(s["__key__"], s["face.png"], s["background.png"], s["cls"], s["json"], expected)
    one = load_dataset("webdataset", data_files={"train": f"{root}/train/*.tar"}, split="train", streaming=True)
    assert sum(1 for _ in one) == COUNTS["train"]


def test_info_json_has_the_split_layout_timms_reader_reads(root):
    """timm's ReaderWds takes `splits.<split>.{name, num_samples, filenames, shard_lengths}`,
    opens `os.path.join(root, filename)`, reports `num_samples` as its length, and would take
    its targets from the json sidecar if a split had an `alt_label`."""
    info = read_info(root)
    for split, n in COUNTS.items():
        entry = info["splits"][split]
        assert entry["name"] == split and "alt_label" not in entry
        assert entry["num_samples"] == sum(entry["shard_lengths"]) == n
        for name, length in zip(entry["filenames"], entry["shard_lengths"], strict=True):
            path = os.path.join(root, name)
            assert sum(1 for _ in wds.WebDataset(path, shardshuffle=False)) == length


def _timm_create_dataset():
    try:
        from timm.data import create_dataset
    except (ImportError, RuntimeError) as exc:  # RuntimeError: a CUDA torchvision beside a CPU torch
        pytest.skip(f"timm.data does not import here: {type(exc).__name__}: {exc}")
    return create_dataset


@pytest.mark.parametrize("member", ["face.png", "background.png"])
def test_timm_reads_each_image_of_a_pair(root, expected, member):
    """timm reads one image per sample; `;jpg` is needed because its reader renames the
    decoded image, which it always stores under "jpg", by `input_key` too."""
    create_dataset = _timm_create_dataset()
    for split in SPLITS:
        ds = create_dataset("wds/noisetrace", root=root, split=split, input_key=f"{member};jpg")
        got = list(ds)
        assert len(ds) == len(got) == COUNTS[split]
        pairs = [p for p in expected.values() if p["meta"]["split"] == split]
        want = sorted((p[member.split(".")[0]].tobytes(), p["cls"]) for p in pairs)
        assert sorted((np.asarray(img).tobytes(), cls) for img, cls in got) == want
