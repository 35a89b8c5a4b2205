"""Face and background squares against brute force over many frame and box sizes."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.geometry import background_square, extra_background_squares, face_square, fit_squares, overlaps


def _brute_force(face, w, h):
    fx, fy, s = face
    best = None
    for x in range(0, w - s + 1):
        for y in range(0, h - s + 1):
            if overlaps((x, y, s), face):
                continue
            d = math.hypot(x - fx, y - fy)
            if best is None or d > best:
                best = d
    return best


def test_background_matches_brute_force_on_a_grid():
    rng = np.random.default_rng(0)
    checked_none = checked_some = 0
    for w in (8, 13, 20, 31):
        for h in (8, 11, 20, 27):
            for _ in range(12):
                s = int(rng.integers(1, min(w, h) + 1))
                face = (int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1)), s)
                got = background_square(face, w, h)
                want = _brute_force(face, w, h)
                if want is None:
                    assert got is None
                    checked_none += 1
                    continue
                checked_some += 1
                x, y, side = got
                assert side == s and 0 <= x <= w - s and 0 <= y <= h - s
                assert not overlaps(got, face)
                assert math.isclose(math.hypot(x - face[0], y - face[1]), want)
    assert checked_none > 0 and checked_some > 0


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(1, 40), h=st.integers(1, 40), data=st.data(),
)
def test_background_property(w, h, data):
    s = data.draw(st.integers(1, min(w, h)))
    face = (data.draw(st.integers(0, w - s)), data.draw(st.integers(0, h - s)), s)
    got = background_square(face, w, h)
    want = _brute_force(face, w, h)
    assert (got is None) == (want is None)
    if got is not None:
        assert not overlaps(got, face)
        assert math.isclose(math.hypot(got[0] - face[0], got[1] - face[1]), want)


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(1, 2000), h=st.integers(1, 2000), data=st.data(), scale=st.floats(0.5, 3.0),
)
def test_face_square_inside_frame_and_centred(w, h, data, scale):
    left = data.draw(st.integers(0, w - 1))
    top = data.draw(st.integers(0, h - 1))
    right = data.draw(st.integers(left + 1, w))
    bottom = data.draw(st.integers(top + 1, h))
    x, y, s = face_square(left, top, right, bottom, w, h, scale)
    assert 1 <= s <= min(w, h)
    assert 0 <= x <= w - s and 0 <= y <= h - s
    want = min(max(1, round(max(right - left, bottom - top) * scale)), w, h)
    assert s == want
    # Centred unless the frame edge forced a shift; never shifted further than needed.
    cx = (left + right) / 2
    if s / 2 <= cx <= w - s / 2:
        assert abs(x + s / 2 - cx) <= 0.5 + 1e-9


@settings(max_examples=200, deadline=None)
@given(w=st.integers(8, 60), h=st.integers(8, 60), data=st.data())
def test_fit_squares_shrinks_only_as_much_as_needed(w, h, data):
    left = data.draw(st.integers(0, w - 2))
    top = data.draw(st.integers(0, h - 2))
    right = data.draw(st.integers(left + 1, w))
    bottom = data.draw(st.integers(top + 1, h))
    got = fit_squares(left, top, right, bottom, w, h, 1.3, 1.0)
    box = max(right - left, bottom - top)
    sides = range(min(round(box * 1.3), w, h), max(min(round(box * 1.0), w, h), 1) - 1, -1)
    fitting = [s for s in sides if _brute_force(face_square(left, top, right, bottom, w, h, s / box), w, h) is not None]
    if not fitting:
        assert got is None
        return
    face, bg = got
    assert face[2] == bg[2] == fitting[0]  # the largest side that leaves room
    assert not overlaps(face, bg)


def _brute_force_extras(face, background, w, h, k):
    """The greedy max-min of `extra_background_squares`, the slow way: every position of the
    frame, kept when on the grid; every distance recomputed at every step."""
    fx, fy, s = face
    step = max(s // 2, 1)
    on_grid = lambda v, far: v % step == 0 or v == far  # noqa: E731
    candidates = [(x, y, s) for y in range(h - s + 1) for x in range(w - s + 1)
                  if on_grid(x, w - s) and on_grid(y, h - s) and not overlaps((x, y, s), face)]
    picks = []
    for _ in range(k):
        scored = [(min((c[0] - o[0]) ** 2 + (c[1] - o[1]) ** 2 for o in (face, background, *picks)), -i)
                  for i, c in enumerate(candidates)]
        if not scored or max(scored)[0] == 0:
            break
        picks.append(candidates[-max(scored)[1]])
    return picks, candidates


def _check_extras(face, w, h, k):
    """The extras of one frame against brute force and the contract; returns how many."""
    background = background_square(face, w, h)
    if background is None:
        return None
    got = extra_background_squares(face, background, w, h, k)
    want, candidates = _brute_force_extras(face, background, w, h, k)
    assert got == want
    assert len(got) == min(k, len(set(candidates) - {background}))  # fewer only when the grid is out of room
    assert len(set(got) | {background}) == len(got) + 1  # distinct from each other and the main background
    for x, y, side in got:
        assert side == face[2] and 0 <= x <= w - side and 0 <= y <= h - side
        assert not overlaps((x, y, side), face)
    return len(got)


def test_extra_backgrounds_match_brute_force_on_a_grid():
    rng = np.random.default_rng(1)
    counts = set()
    for w in (8, 13, 20, 31, 48):
        for h in (8, 11, 20, 27):
            for _ in range(8):
                s = int(rng.integers(1, min(w, h) + 1))
                face = (int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1)), s)
                n = _check_extras(face, w, h, int(rng.integers(0, 7)))
                counts.add(n)
    assert {0, 1, 6} <= counts  # no room, little room and all asked for all occur


@settings(max_examples=300, deadline=None)
@given(w=st.integers(1, 40), h=st.integers(1, 40), k=st.integers(0, 8), data=st.data())
def test_extra_backgrounds_property(w, h, k, data):
    s = data.draw(st.integers(1, min(w, h)))
    face = (data.draw(st.integers(0, w - s)), data.draw(st.integers(0, h - s)), s)
    _check_extras(face, w, h, k)


def test_extra_backgrounds_spread_over_a_frame():
    """A face in the middle of a 1280x720 frame: the picks go to the frame's far corners and
    edges first, each at least a side away from the face, the main square and each other."""
    face = (560, 280, 160)
    background = background_square(face, 1280, 720)
    got = extra_background_squares(face, background, 1280, 720, 4)
    assert len(got) == 4
    assert {(x in (0, 1120), y in (0, 560)) for x, y, _ in got[:3]} == {(True, True)}  # corners first
    placed = [face, background, *got]
    assert min(math.dist(a[:2], b[:2]) for i, a in enumerate(placed) for b in placed[i + 1:]) >= 160
    assert extra_background_squares(face, background, 1280, 720, 0) == []
