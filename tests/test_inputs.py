"""Labels, groups and splits from dataset layouts and manifests (no decoding involved)."""
import json

import pytest

from pipeline.inputs import InputError, list_videos


def _touch(root, rel):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def _by_video(records):
    return {r.video: r for r in records}


def test_celebdf_layout_and_official_test_list(tmp_path):
    files = ["Celeb-real/id0_0000.mp4", "Celeb-real/id1_0001.mp4", "YouTube-real/00170.mp4",
             "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0001.mp4"]
    files += [f"Celeb-real/id{i}_0000.mp4" for i in range(2, 12)]
    for f in files:
        _touch(tmp_path, f)
    (tmp_path / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id1_id0_0001.mp4\n")
    recs = _by_video(list_videos(str(tmp_path)))
    assert len(recs) == len(files)
    assert recs["Celeb-real/id0_0000.mp4"].label == "real"
    assert recs["Celeb-synthesis/id0_id1_0000.mp4"].label == "fake"
    assert recs["Celeb-synthesis/id0_id1_0000.mp4"].group == recs["Celeb-real/id0_0000.mp4"].group
    assert recs["YouTube-real/00170.mp4"].split == "test"
    assert recs["Celeb-synthesis/id1_id0_0001.mp4"].split == "test"
    others = [r for v, r in recs.items() if v not in ("YouTube-real/00170.mp4", "Celeb-synthesis/id1_id0_0001.mp4")]
    assert {r.split for r in others} <= {"train", "val"}  # the official list alone defines test
    assert all(r.dataset == "celebdf" and r.reason is None for r in recs.values())


def test_ffpp_layout_with_official_splits(tmp_path):
    for f in ["original_sequences/youtube/c23/videos/519.mp4", "original_sequences/youtube/c23/videos/515.mp4",
              "original_sequences/youtube/c23/videos/001.mp4", "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
              "manipulated_sequences/Deepfakes/c23/videos/001_870.mp4"]:
        _touch(tmp_path, f)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/test.json").write_text(json.dumps([["519", "515"]]))
    (tmp_path / "splits/train.json").write_text(json.dumps([["001", "870"]]))
    (tmp_path / "splits/val.json").write_text("[]")
    recs = _by_video(list_videos(str(tmp_path)))
    fake = recs["manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"]
    assert (fake.label, fake.split, fake.dataset) == ("fake", "test", "ffpp")
    assert recs["original_sequences/youtube/c23/videos/515.mp4"].split == "test"
    assert recs["original_sequences/youtube/c23/videos/519.mp4"].group == fake.group
    assert recs["original_sequences/youtube/c23/videos/001.mp4"].split == "train"


def test_dfdc_metadata_generic_folders_and_unlabelled(tmp_path):
    _touch(tmp_path, "dfdc_part_0/a.mp4")
    _touch(tmp_path, "dfdc_part_0/b.mp4")
    _touch(tmp_path, "dfdc_part_0/c.mp4")
    (tmp_path / "dfdc_part_0/metadata.json").write_text(json.dumps({
        "a.mp4": {"label": "REAL", "split": "train"},
        "b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"}}))
    _touch(tmp_path, "mine/Real/x y.mp4")
    _touch(tmp_path, "mine/fake/z.MP4")
    _touch(tmp_path, "misc/unknown.mp4")
    _touch(tmp_path, "mine/notes.txt")
    recs = _by_video(list_videos(str(tmp_path)))
    assert set(recs) == {"dfdc_part_0/a.mp4", "dfdc_part_0/b.mp4", "dfdc_part_0/c.mp4", "mine/Real/x y.mp4",
                         "mine/fake/z.MP4", "misc/unknown.mp4"}
    assert recs["dfdc_part_0/b.mp4"].label == "fake" and recs["dfdc_part_0/b.mp4"].group == recs["dfdc_part_0/a.mp4"].group
    assert recs["dfdc_part_0/a.mp4"].split == recs["dfdc_part_0/b.mp4"].split
    assert recs["dfdc_part_0/c.mp4"].reason == "unlabelled"
    assert recs["mine/Real/x y.mp4"].label == "real" and recs["mine/fake/z.MP4"].label == "fake"
    assert recs["misc/unknown.mp4"].reason == "unlabelled" and recs["misc/unknown.mp4"].label is None
    # a glob selects a subset, relative to the part of the pattern before the first wildcard
    globbed = list_videos(str(tmp_path / "mine" / "*" / "*"))
    assert sorted(r.video for r in globbed) == ["Real/x y.mp4", "fake/z.MP4"]


def test_manifest(tmp_path):
    _touch(tmp_path, "v/a.mp4")
    (tmp_path / "m.csv").write_text(
        "path,label,split,group\nv/a.mp4,real,,alice\nv/b.mp4,FAKE,test,alice\nv/a.mp4,real,,\n"
        "v/c.mp4,maybe,,\nv/d.mp4,1,holdout,\n/abs/e.mp4,0,val,eve\n")
    recs = list_videos(str(tmp_path / "m.csv"))
    assert len(recs) == 6
    by = {(r.video, r.reason) for r in recs}
    assert ("v/c.mp4", "unlabelled") in by and ("v/d.mp4", "bad_split") in by
    assert any(r.reason == "duplicate" for r in recs)
    b = next(r for r in recs if r.video == "v/b.mp4")
    assert (b.label, b.split, b.group) == ("fake", "test", "alice")
    a = next(r for r in recs if r.video == "v/a.mp4" and r.reason is None)
    assert a.group == "alice" and a.split in ("train", "val", "test")
    e = next(r for r in recs if r.path == "/abs/e.mp4")
    assert (e.label, e.split) == ("real", "val")
    (tmp_path / "bad.csv").write_text("file,kind\nx.mp4,real\n")
    with pytest.raises(InputError, match="needs columns"):
        list_videos(str(tmp_path / "bad.csv"))
    with pytest.raises(InputError):
        list_videos(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError):
        list_videos(str(tmp_path / "nothing-here"))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pipeline.splits import assign_groups, hashed_split  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(groups=st.lists(st.text(min_size=1, max_size=12), max_size=60), extra=st.lists(st.text(min_size=1, max_size=12), max_size=10))
def test_split_assignment_is_deterministic_and_proportional(groups, extra):
    a = assign_groups(groups)
    assert a == assign_groups(list(reversed(groups)))  # order of discovery does not matter
    assert set(a) == set(groups)
    n = len(set(groups))
    counts = {s: sum(1 for v in a.values() if v == s) for s in ("train", "val", "test")}
    if n >= 3:
        assert counts["val"] >= 1 and counts["test"] >= 1
        assert counts["train"] >= counts["val"] and counts["train"] >= counts["test"]
    if n >= 20:
        assert abs(counts["train"] / n - 0.8) <= 0.1
    # adding groups moves at most a few existing groups (a rank cut, not a reshuffle)
    b = assign_groups(groups + extra)
    moved = sum(1 for g in a if a[g] != b[g])
    assert moved <= 2 * len(set(extra) - set(groups)) + 2


def test_hashed_split_cuts_8_1_1_in_expectation_each_name_on_its_own():
    """`--split-by pair`: a pair's split from its key alone, near 8:1:1 over many keys."""
    keys = [f"clip-{i % 37:02d}-f{i:07d}" for i in range(6000)]
    splits = [hashed_split(k) for k in keys]
    shares = {s: splits.count(s) / len(keys) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.8) < 0.02 and abs(shares["val"] - 0.1) < 0.015 and abs(shares["test"] - 0.1) < 0.015
    assert splits == [hashed_split(k) for k in keys]
    assert {hashed_split(k, ("train", "val"), (8, 1)) for k in keys} == {"train", "val"}


def test_ffpp_methods_dfd_and_generic_collections(tmp_path):
    """FF++'s manipulated_sequences/<method> becomes `method` (fakes only); Google's DFD
    inside the FF++ layout is its own dataset; real/ fake/ under a folder take its name."""
    for f in ["ffpp/original_sequences/youtube/c23/videos/183.mp4",
              "ffpp/manipulated_sequences/FaceSwap/c23/videos/183_253.mp4",
              "ffpp/original_sequences/actors/c23/videos/01__kitchen.mp4",
              "ffpp/manipulated_sequences/DeepFakeDetection/c23/videos/01_02__kitchen__ABC.mp4",
              "My Clips/real/a.mp4", "fake/b.mp4"]:
        _touch(tmp_path, f)
    recs = _by_video(list_videos(str(tmp_path)))
    swap = recs["ffpp/manipulated_sequences/FaceSwap/c23/videos/183_253.mp4"]
    assert (swap.dataset, swap.method, swap.meta()["method"]) == ("ffpp", "FaceSwap", "FaceSwap")
    real = recs["ffpp/original_sequences/youtube/c23/videos/183.mp4"]
    assert (real.dataset, real.method, real.group) == ("ffpp", None, swap.group) and "method" not in real.meta()
    dfd = recs["ffpp/manipulated_sequences/DeepFakeDetection/c23/videos/01_02__kitchen__ABC.mp4"]
    assert (dfd.dataset, dfd.method) == ("dfd", "DeepFakeDetection")
    assert recs["ffpp/original_sequences/actors/c23/videos/01__kitchen.mp4"].dataset == "dfd"
    assert recs["My Clips/real/a.mp4"].dataset == "my-clips"
    assert recs["fake/b.mp4"].dataset == "generic"


def test_manifest_keeps_the_layouts_method_for_fakes_only(tmp_path):
    _touch(tmp_path, "v/manipulated_sequences/Face2Face/c23/videos/1_2.mp4")
    _touch(tmp_path, "v/manipulated_sequences/Face2Face/c23/videos/3_4.mp4")
    (tmp_path / "m.csv").write_text("path,label\nv/manipulated_sequences/Face2Face/c23/videos/1_2.mp4,fake\n"
                                    "v/manipulated_sequences/Face2Face/c23/videos/3_4.mp4,real\n")
    recs = {r.video.rsplit("/", 1)[-1]: r for r in list_videos(str(tmp_path / "m.csv"))}
    assert recs["1_2.mp4"].method == "Face2Face" and recs["3_4.mp4"].method is None
