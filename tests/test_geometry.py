"""Face and background squares against brute force over many frame and box sizes."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.geometry import (
    background_patch, background_square, extra_background_squares, face_square, fit_squares, native_patches, overlaps,
)


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


def _brute_force_patch(face, side, w, h):
    """The largest distance of a `side` square's centre, clear of the face, from the face's
    centre, over every position in the frame; None when there is none."""
    fx, fy, s = face
    distances = [math.hypot(x + side / 2 - fx - s / 2, y + side / 2 - fy - s / 2)
                 for x in range(w - side + 1) for y in range(h - side + 1) if not overlaps((x, y, side), face)]
    return max(distances, default=None)


@settings(max_examples=300, deadline=None)
@given(w=st.integers(1, 40), h=st.integers(1, 40), data=st.data())
def test_background_patch_matches_brute_force(w, h, data):
    """A patch of any side, smaller or larger than the face square (`--resize-filter none`)."""
    s = data.draw(st.integers(1, min(w, h)))
    face = (data.draw(st.integers(0, w - s)), data.draw(st.integers(0, h - s)), s)
    side = data.draw(st.integers(1, 40))
    got = background_patch(face, side, w, h)
    want = _brute_force_patch(face, side, w, h)
    assert (got is None) == (want is None)
    if got is not None:
        x, y, got_side = got
        assert got_side == side and 0 <= x <= w - side and 0 <= y <= h - side and not overlaps(got, face)
        assert math.isclose(math.hypot(x + side / 2 - face[0] - s / 2, y + side / 2 - face[1] - s / 2), want)


def test_a_patch_fits_where_no_face_sized_square_does():
    """A close-up: a 170 px frame, a 100 px face square in its middle, 35 px on each side."""
    face = (35, 35, 100)
    assert background_square(face, 170, 170) is None
    assert background_patch(face, 32, 170, 170) is not None and background_patch(face, 36, 170, 170) is None
    got = fit_squares(50, 50, 120, 120, 170, 170, 1.6, 1.0, patch=32)
    assert got is not None and got[1][2] == 32 and not overlaps(*got)
    fitting = [side for side in range(112, 69, -1)  # 1.6 x the 70 px box down to 1.0 x
               if _brute_force_patch(face_square(50, 50, 120, 120, 170, 170, side / 70), 32, 170, 170) is not None]
    assert got[0][2] == fitting[0] < 112  # the largest face square that leaves room for the patch
    assert fit_squares(50, 50, 120, 120, 170, 170, 1.6, 1.0) is None


@settings(max_examples=300, deadline=None)
@given(side=st.integers(1, 200), size=st.integers(1, 64), n=st.integers(1, 30), x=st.integers(0, 50), y=st.integers(0, 50))
def test_native_patches_tile_the_square_from_its_centre(side, size, n, x, y):
    """Every patch on the grid through the central patch that fits the square, the slow
    way, ordered by distance from the square's centre, then by y and x."""
    got = native_patches((x, y, side), size, n)
    if side <= size:
        assert got == [(x, y, side)]
        return
    c = (side - size) // 2
    offsets = [o for o in range(side - size + 1) if (o - c) % size == 0]
    centre = x + side / 2, y + side / 2
    grid = sorted(((x + ox, y + oy, size) for oy in offsets for ox in offsets),
                  key=lambda p: ((p[0] + size / 2 - centre[0]) ** 2 + (p[1] + size / 2 - centre[1]) ** 2, p[1], p[0]))
    assert got == grid[:n]
    assert got[0] == (x + c, y + c, size)  # window 0: the central patch, the crop without windows
    assert all(not overlaps(a, b) for i, a in enumerate(got) for b in got[i + 1:])


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
