"""The parameter-free face-versus-background evidence of one pair: nothing learnt, so it
can be measured on any clip, with or without a checkpoint.

A swapped face is re-rendered and blended, so it should carry less of the camera's and
codec's fine noise than its own background. The finest-scale energy of each square (a
4-neighbour Laplacian of the grey image) measures that noise plus fine texture; the log of
the face's, of the background's, and their difference (the log ratio `bench/noise_cue.py`
studies) are the three numbers a keyframe gives. Shared by the bench scripts and
`detect --reference`, so both measure exactly the same thing.

`detect --reference` measures them on the central `PATCH` pixels of each square at the
video's own resolution (`build-shards --resize-filter none`), whatever the checkpoint's
crops: resizing a square to the model's size averages away the very noise compared here,
and on the labelled clips the native patches separated a group's fakes from its reals
best (docs/real-data.md, "Reference footage").
"""
from __future__ import annotations

import numpy as np

from pipeline.pairs import NO_RESIZE, FramePair, crop_square

EVIDENCE = ("face", "background", "ratio")  # columns of `pair_evidence`: log energies and their difference
PATCH = 64


def high_pass_energy(square: np.ndarray) -> float:
    """Mean squared 4-neighbour Laplacian of the grey image: its finest-scale energy."""
    g = square.astype(np.float32).mean(axis=2)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float((lap**2).mean()) + 1e-6


def log_ratio(face: np.ndarray, background: np.ndarray) -> float:
    """The cue of one pair: log of face over background high-pass energy."""
    return float(np.log(high_pass_energy(face) / high_pass_energy(background)))


def pair_evidence(face: np.ndarray, background: np.ndarray) -> np.ndarray:
    """[log face energy, log background energy, their difference] of one pair (`EVIDENCE`)."""
    f, b = np.log(high_pass_energy(face)), np.log(high_pass_energy(background))
    return np.array([f, b, f - b])


def evidence_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Keyframes' `pair_evidence` as one (n, len(EVIDENCE)) array, the shape `Reference` and
    `detection.reference.compare` take also when there are none."""
    return np.stack(rows) if rows else np.zeros((0, len(EVIDENCE)))


def native_evidence(pair: FramePair) -> np.ndarray:
    """`pair_evidence` of the squares' central `PATCH` pixels at the frame's own resolution."""
    image = pair.keyframe.image
    return pair_evidence(crop_square(image, pair.face_box, PATCH, NO_RESIZE),
                         crop_square(image, pair.background_box, PATCH, NO_RESIZE))
