"""The shard contract: schema round trip, deterministic atomic writes, reading back."""
import hashlib
import os

import numpy as np
import pytest

from shards.info import ShardRecord, build_info, split_urls
from shards.raw import RawSample, read_members
from shards.reader import decode_pair, iter_pairs, sample_meta, shard_members
from shards.schema import PairSample, check_key, make_key
from shards.writer import shard_name, write_shard


def _sample(i: int, label: str = "real") -> PairSample:
    rng = np.random.default_rng(i)
    meta = {
        "video": f"dir with space/clip.{i}.mp4",
        "dataset": "generic",
        "label": label,
        "split": "train",
        "group": "g",
        "frame_index": i,
        "pts": i * 512,
        "frame_size": [320, 240],
        "face_box": [10, 10, 80],
        "background_box": [200, 120, 80],
        "score": 1.5,
    }
    face = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return PairSample(make_key(meta["video"], i), face, bg, meta)


def test_keys_are_dot_free_unique_and_safe():
    keys = {make_key(v, 3) for v in ["a/b.mp4", "a_b.mp4", "../../etc/passwd", "x y;rm -rf.mp4"]}
    assert len(keys) == 4
    for k in keys:
        assert check_key(k) == k and "." not in k and "/" not in k
    with pytest.raises(ValueError):
        check_key("../evil")


def test_shards_are_byte_identical_and_atomic(tmp_path):
    samples = [_sample(i, "fake" if i % 2 else "real") for i in range(6)]
    digests = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        out.mkdir()
        # Reverse the input order on the second run: the shard must not depend on it.
        n = write_shard(str(out / shard_name(0)), samples if run == 0 else samples[::-1])
        assert n == 6
        assert os.listdir(out) == [shard_name(0)]  # no temp file left behind
        digests.append(hashlib.sha256((out / shard_name(0)).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_extra_backgrounds_round_trip_and_must_match_their_boxes():
    plain = _sample(1)
    rng = np.random.default_rng(9)
    extras = tuple(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    sample = PairSample(plain.key, plain.face, plain.background,
                        {**plain.meta, "extra_background_boxes": [[0, 0, 80], [240, 160, 80]]}, extras)
    members = sample.to_members()
    assert [name.split(".", 1)[1] for name, _ in members] == [
        "background.png", "background1.png", "background2.png", "cls", "face.png", "json"]
    back = PairSample.from_members(sample.key, {name.split(".", 1)[1]: data for name, data in members})
    assert all(np.array_equal(a, b) for a, b in zip(back.extra_backgrounds, extras, strict=True))
    assert PairSample.from_members(plain.key, {n.split(".", 1)[1]: d for n, d in plain.to_members()}).extra_backgrounds == ()
    with pytest.raises(ValueError, match="1 extra backgrounds but 2 extra_background_boxes"):
        PairSample(plain.key, plain.face, plain.background, sample.meta, extras[:1]).to_members()
    raw = {"__key__": sample.key, **{name.split(".", 1)[1]: data for name, data in members}}
    assert len(decode_pair(raw)["extra_backgrounds"]) == 2
    del raw["background2.png"]  # a json promising a square its sample lacks is a bad sample
    with pytest.raises(ValueError, match=r"lacks \['background2.png'\]"):
        decode_pair(raw)


def test_failed_write_leaves_no_shard(tmp_path):
    bad = _sample(0)
    bad.meta.pop("score")
    with pytest.raises(ValueError):
        write_shard(str(tmp_path / shard_name(0)), [_sample(1), bad])
    assert not (tmp_path / shard_name(0)).exists()


def test_round_trip_through_webdataset(tmp_path):
    samples = [_sample(i, "fake" if i % 2 else "real") for i in range(5)]
    (tmp_path / "train").mkdir()
    write_shard(str(tmp_path / "train" / shard_name(0)), samples)
    info = build_info([ShardRecord("train", "train/" + shard_name(0), 5, {"real": 3, "fake": 2})])
    urls = split_urls(str(tmp_path), "train", info)
    got = {p["key"]: p for p in iter_pairs(urls)}
    assert len(got) == 5
    members = shard_members(urls[0])  # the undecoded read tools use: same samples, same metadata
    assert sorted(members) == sorted(got)
    for s in samples:
        p = got[s.key]
        assert np.array_equal(p["face"], s.face) and np.array_equal(p["background"], s.background)
        assert p["cls"] == s.cls and p["meta"] == s.meta == sample_meta(members[s.key])
    with pytest.raises(ValueError, match="no shards for split 'val'"):
        split_urls(str(tmp_path), "val", info)


def test_raw_samples_copy_pairs_between_tars_byte_for_byte(tmp_path):
    """A shard assembled from members read out of another tar equals one written from the
    decoded samples: the pipeline's spill-then-copy step cannot change a pixel."""
    samples = [_sample(i, "fake" if i % 2 else "real") for i in range(6)]
    write_shard(str(tmp_path / "spill.tar"), samples)
    wanted = [s for s in samples if s.meta["frame_index"] in (1, 4, 5)]
    with open(tmp_path / "spill.tar", "rb") as f:
        members = read_members(f, [s.key for s in wanted])
    raw = [RawSample(key, m, "real") for key, m in members.items()]
    write_shard(str(tmp_path / "copied.tar"), raw)
    write_shard(str(tmp_path / "direct.tar"), wanted)
    assert (tmp_path / "copied.tar").read_bytes() == (tmp_path / "direct.tar").read_bytes()
    with open(tmp_path / "spill.tar", "rb") as f, pytest.raises(ValueError, match="lacks samples"):
        read_members(f, [samples[0].key, "no-such-key"])
