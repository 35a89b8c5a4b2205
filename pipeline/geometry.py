"""Where the face square and the background square lie in a frame.

Squares are (x, y, side) in frame pixels, top-left corner inclusive. Both functions are
exact and pure, so they are tested against brute force and reused by `detect`.
"""
from __future__ import annotations

import math

import numpy as np

Square = tuple[int, int, int]


def face_square(
    left: int, top: int, right: int, bottom: int, frame_w: int, frame_h: int, scale: float = 1.3
) -> Square:
    """The detector box made square: side = max(w, h) x scale, centred on the box, then
    shifted (not shrunk) to lie inside the frame, as FaceForensics++ crops faces.

    A side larger than the frame's shorter edge is capped to it: the alternative, padding,
    would invent pixels and with them a noise the camera never made.
    """
    side = round(max(right - left, bottom - top) * scale)
    return place_square((left + right) / 2, (top + bottom) / 2, side, frame_w, frame_h)


def place_square(cx: float, cy: float, side: int, frame_w: int, frame_h: int) -> Square:
    """A square of `side` (capped to the frame) centred on (cx, cy), shifted into the frame."""
    side = max(min(side, frame_w, frame_h), 1)
    x = min(max(round(cx - side / 2), 0), frame_w - side)
    y = min(max(round(cy - side / 2), 0), frame_h - side)
    return x, y, side


def fit_squares(
    left: int, top: int, right: int, bottom: int, frame_w: int, frame_h: int, scale: float, min_scale: float,
    patch: int | None = None,
) -> tuple[Square, Square] | None:
    """Face and background squares, shrinking the face square's margin if need be.

    Close-ups (a large face in a 536x500 or 1280x720 frame) often leave no room for a
    background square of the face square's size at `scale`. Rather than lose those frames,
    the face square, still centred on the face, shrinks one pixel at a time down to
    `min_scale` x the box until a same-size background fits; both squares keep one size,
    so both are resized by the same factor and their noise stays comparable.
    With `patch` (a side in pixels) the background is instead the furthest `patch`-size
    square clear of the face square (`background_patch`): native crops (`--resize-filter
    none`) compare `patch`-size pixels only, so a background needs no more room than that.
    None when even `min_scale` leaves no room.
    """
    cx, cy = (left + right) / 2, (top + bottom) / 2
    box = max(right - left, bottom - top)
    largest = min(round(box * scale), frame_w, frame_h)
    smallest = max(min(round(box * min_scale), largest), 1)
    for side in range(largest, smallest - 1, -1):
        face = place_square(cx, cy, side, frame_w, frame_h)
        background = background_patch(face, side if patch is None else patch, frame_w, frame_h)
        if background is not None:
            return face, background
    return None


def overlaps(a: Square, b: Square) -> bool:
    ax, ay, aside = a
    bx, by, bside = b
    return ax < bx + bside and bx < ax + aside and ay < by + bside and by < ay + aside


def background_square(face: Square, frame_w: int, frame_h: int) -> Square | None:
    """The square of the face's size, inside the frame and not overlapping the face, whose
    centre is furthest (Euclidean) from the face's centre; None when no such square exists."""
    return background_patch(face, face[2], frame_w, frame_h)


def background_patch(face: Square, side: int, frame_w: int, frame_h: int) -> Square | None:
    """The square of `side`, inside the frame and not overlapping the face, whose centre is
    furthest (Euclidean) from the face's centre; None when no such square exists.

    The allowed corners form up to four rectangles (left of, right of, above and below the
    face); a square's centre is its corner plus side / 2, so the furthest centre of a
    rectangle of corners is at one of the rectangle's corners, and checking those is
    exact. Ties go to the first candidate in a fixed order, for reproducible crops.
    """
    fx, fy, s = face
    max_x, max_y = frame_w - side, frame_h - side
    if max_x < 0 or max_y < 0:
        return None
    # Centre minus the face's centre = corner + shift - face corner; 0.0 for a square of the
    # face's size, so those distances are the corners' own, bit for bit.
    shift = (side - s) / 2
    regions = []  # (x0, x1, y0, y1) inclusive ranges of allowed corners
    if fx - side >= 0:
        regions.append((0, fx - side, 0, max_y))  # left
    if fx + s <= max_x:
        regions.append((fx + s, max_x, 0, max_y))  # right
    if fy - side >= 0:
        regions.append((0, max_x, 0, fy - side))  # above
    if fy + s <= max_y:
        regions.append((0, max_x, fy + s, max_y))  # below
    best: Square | None = None
    best_d = -1.0
    for x0, x1, y0, y1 in regions:
        for x in (x0, x1):
            for y in (y0, y1):
                d = math.hypot(x - fx + shift, y - fy + shift)
                if d > best_d:
                    best, best_d = (x, y, side), d
    return best


def extra_background_squares(face: Square, background: Square, frame_w: int, frame_h: int, k: int) -> list[Square]:
    """Up to `k` more squares of the face's size, spread over the frame, for a pair whose
    main (furthest) background square is `background`: the frame's own yardstick of how
    much noise its scene carries, beside the one square the paper compares the face with.

    Candidates are the squares inside the frame, not overlapping the face, whose corner lies
    on a grid: x in 0, step, 2 step, ... plus the far edge `frame_w - side` (y likewise),
    step = side // 2 (at least 1). Each allowed region (left of, right of, above or below
    the face) touches a frame edge, so it holds a candidate whenever it holds any square,
    and a 4K frame gives a few hundred candidates, not millions. Picks are greedy max-min:
    each is the candidate whose smallest distance (of centres, which for same-size squares
    is the distance of corners) to the face, the main background and the squares already
    picked is largest, so the picks spread over the frame away from the face and from each
    other. Ties go to the first candidate in reading order (by y, then x), for reproducible
    crops. Picks may overlap each other (so a small frame still gives several) but never the
    face, and never coincide with each other or with the main background. Fewer than `k`
    when the grid has no more distinct candidates; [] when `k` is 0.
    """
    if k < 0:
        raise ValueError(f"the number of extra background squares must be 0 or more, got {k}")
    fx, fy, s = face
    max_x, max_y = frame_w - s, frame_h - s
    if k == 0 or max_x < 0 or max_y < 0:
        return []
    step = max(s // 2, 1)
    xs = np.union1d(np.arange(0, max_x + 1, step), [max_x])
    ys = np.union1d(np.arange(0, max_y + 1, step), [max_y])
    cy, cx = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))  # reading order: by y, then x
    free = (cx + s <= fx) | (fx + s <= cx) | (cy + s <= fy) | (fy + s <= cy)  # not overlapping the face
    cx, cy = cx[free], cy[free]
    # Squared distances are integers: exact comparisons, so ties are real ties.
    nearest = np.minimum(_distance2(cx, cy, face), _distance2(cx, cy, background))
    picks: list[Square] = []
    while len(picks) < k and nearest.size and nearest.max() > 0:  # 0: only the background and picks are left
        best = int(np.argmax(nearest))  # the first of equals
        pick = (int(cx[best]), int(cy[best]), s)
        picks.append(pick)
        nearest = np.minimum(nearest, _distance2(cx, cy, pick))
    return picks


def _distance2(xs: np.ndarray, ys: np.ndarray, square: Square) -> np.ndarray:
    """Squared distances of the corners (xs, ys) to the square's (= of the centres, for
    squares of one size)."""
    return (xs - square[0]) ** 2 + (ys - square[1]) ** 2


def native_patches(square: Square, size: int, n: int) -> list[Square]:
    """Up to `n` non-overlapping `size`-side patches of `square`, in frame pixels: the
    windows `--resize-filter none` crops at native resolution.

    Patch 0 is the square's central patch (corner at (side - size) // 2 inside it), the one
    crop a build without `--windows` takes; the others lie on the grid of `size` steps
    through it, as many as fit inside the square, ordered by the distance of their centre
    from the square's centre (nearest first; ties in reading order: by y, then x), so the
    first windows hold the most face. The grid keeps every patch whole and apart, so no
    pixel is seen twice. A square no larger than `size` is its own one patch (cropping it
    enlarges it, as without windows).
    """
    if n < 1:
        raise ValueError(f"the number of windows must be 1 or more, got {n}")
    x, y, side = square
    if side <= size:
        return [square]
    c = (side - size) // 2
    steps = range(-(c // size), (side - size - c) // size + 1)
    # twice the offset of a patch's centre from the square's centre, an integer
    twice = {k: 2 * (c + k * size) - (side - size) for k in steps}
    grid = sorted(((ky, kx) for ky in steps for kx in steps), key=lambda k: (twice[k[0]] ** 2 + twice[k[1]] ** 2, k))
    return [(x + c + kx * size, y + c + ky * size, size) for ky, kx in grid[:n]]
