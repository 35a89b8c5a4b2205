"""How far a suspect clip lies from authentic footage of its own source.

The face-versus-background noise mismatch is real but smaller than how much the same
quantity differs between sources (camera, codec, scene), so one threshold for every video
sits near chance. Measured against a reference of the same source, that variation cancels:
a suspect whose face carries other fine energy than its reference's faces, beside a
background that does not, was not recorded as they were. A reference is the per-keyframe
evidence (`detection.evidence`) of one or more authentic videos; a suspect's departure is
how far its mean lies from the reference's, in the reference's own spread; larger means
less like it. The default is unsigned: on the labelled clips a fake's face departed from
its source's both ways (smoother after a swap, sharper where the fake was encoded more
lightly than the source's reals).

The spread of a short reference is poorly known, so it is shrunk toward a prior: the
pooled within-video spread of the labelled set's real videos, worth `PRIOR_KEYFRAMES`
keyframes. The distances below are the candidates `bench/reference_eval.py` compares;
`DEFAULT_DISTANCE` is the one that ranked suspects best there (chosen on the same clips
it was measured on: docs/real-data.md, "Reference footage").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from detection.evidence import EVIDENCE

MIN_REFERENCE_KEYFRAMES = 8  # fewer, and the reference's spread is mostly the prior: no verdict
UNLIKE_AT = 2.0  # a departure of this many reference spreads or more: "unlike its reference"
PRIOR_KEYFRAMES = 8
# Pooled within-video standard deviation of each evidence over the real videos of the
# labelled set's native-patch shards (`build-shards ... --resize-filter none`, then
# `python bench/reference_eval.py --shards nat64` prints it).
PRIOR_SPREAD = np.array([0.394, 1.733, 1.785])
UNLIKE, CONSISTENT = "unlike its reference", "consistent with its reference"
FACE, BACKGROUND, RATIO = (EVIDENCE.index(name) for name in ("face", "background", "ratio"))


def _shrunk(prior: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
    """The (co)variance of `n` keyframes shrunk toward the prior's, which weighs as
    `PRIOR_KEYFRAMES` keyframes: a short reference's own spread is poorly known."""
    return (PRIOR_KEYFRAMES * prior + (n - 1) * sample) / (PRIOR_KEYFRAMES + n - 1)


@dataclass(frozen=True)
class Reference:
    """The per-keyframe evidence of a source's authentic footage, (n, len(EVIDENCE))."""

    keyframes: np.ndarray
    videos: int = 1

    @property
    def size(self) -> int:
        return len(self.keyframes)

    @property
    def mean(self) -> np.ndarray:
        return self.keyframes.mean(axis=0)

    @property
    def spread(self) -> np.ndarray:
        """Per evidence, the keyframes' standard deviation shrunk toward `PRIOR_SPREAD`:
        a variance that weighs the prior as `PRIOR_KEYFRAMES` keyframes."""
        n = self.size
        var = self.keyframes.var(axis=0, ddof=1) if n > 1 else np.zeros(len(EVIDENCE))
        return np.sqrt(_shrunk(PRIOR_SPREAD**2, var, n))

    def usable(self) -> str:
        """Why this reference cannot judge a clip, or "" when it can."""
        if self.size == 0:
            return "no face pair could be made in the reference footage"
        if self.size < MIN_REFERENCE_KEYFRAMES:
            return (f"the reference gives {self.size} keyframe(s), fewer than {MIN_REFERENCE_KEYFRAMES}: "
                    "its spread is not known well enough")
        return ""


def _z(column: int) -> Callable[[Reference, np.ndarray], float]:
    def z(reference: Reference, suspect: np.ndarray) -> float:
        return float((reference.mean[column] - suspect[:, column].mean()) / reference.spread[column])
    return z


def _combined(reference: Reference, suspect: np.ndarray) -> float:
    """The mean of the face's and the ratio's signed departures."""
    return (_z(FACE)(reference, suspect) + _z(RATIO)(reference, suspect)) / 2


def _rank(reference: Reference, suspect: np.ndarray) -> float:
    """The share of (reference, suspect) keyframe pairs in which the suspect's face is the
    smoother, turned into the shift in spreads between two equal normals that gives that
    share (sqrt(2) * probit), so it reads like the other distances."""
    r, s = reference.keyframes[:, FACE][None, :], suspect[:, FACE][:, None]
    share = float(np.mean((r > s) + 0.5 * (r == s)))
    edge = 0.5 / (r.size * s.size)
    share = min(max(share, edge), 1 - edge)
    return math.sqrt(2) * NormalDist().inv_cdf(share)  # probit: the standard normal quantile


def _unsigned_face(reference: Reference, suspect: np.ndarray) -> float:
    """abs-face-z: a face off its source's energy either way (a fake re-encoded more lightly
    than its source's reals carries more fine energy, not less)."""
    return abs(_z(FACE)(reference, suspect))


def _mahalanobis_rows(reference: Reference, rows: np.ndarray) -> np.ndarray:
    """Unsigned, per row of (face, background) evidence: its distance from the reference's
    mean under the reference's covariance shrunk toward the prior. The background is where
    the face's departure is read against: a face that moves with its background (a darker
    scene, a heavier encode) moves less far than one that moves alone."""
    cols = [FACE, BACKGROUND]
    n = reference.size
    cov = np.cov(reference.keyframes[:, cols].T) if n > 2 else np.zeros((2, 2))
    cov = _shrunk(np.diag(PRIOR_SPREAD[cols] ** 2), cov, n)
    d = rows[:, cols] - reference.mean[cols]
    return np.sqrt(np.einsum("ij,ij->i", d, np.linalg.solve(cov, d.T).T))


def _mahalanobis(reference: Reference, suspect: np.ndarray) -> float:
    """The suspect's mean evidence's `_mahalanobis_rows` distance."""
    return float(_mahalanobis_rows(reference, suspect.mean(axis=0, keepdims=True))[0])


DISTANCES: dict[str, Callable[[Reference, np.ndarray], float]] = {
    "face-z": _z(FACE),
    "ratio-z": _z(RATIO),
    "face+ratio-z": _combined,
    "face-rank": _rank,
    "abs-face-z": _unsigned_face,
    "mahalanobis": _mahalanobis,
}
DEFAULT_DISTANCE = "mahalanobis"


def departure(reference: Reference, suspect: np.ndarray, distance: str = DEFAULT_DISTANCE) -> float:
    """How far the suspect's keyframes (n, len(EVIDENCE)) lie from the reference, in its
    spreads; larger means less like it."""
    return DISTANCES[distance](reference, suspect)


def _score_departure(reference_scores: np.ndarray, suspect_scores: np.ndarray) -> float | None:
    """The model's evidence: how far the suspect's mean P(fake) rises above the reference
    keyframes', in their standard deviation (floored at 0.01: a model sure of every
    reference keyframe would otherwise make any wobble infinite). Not what
    `reference_departure` is, since no checkpoint trained apart from the labelled clips
    was there to validate it."""
    if len(reference_scores) < 2 or not len(suspect_scores):
        return None
    return float((np.mean(suspect_scores) - np.mean(reference_scores)) / max(float(np.std(reference_scores, ddof=1)), 0.01))


@dataclass
class Comparison:
    """One suspect against its reference: the departure and everything the report draws,
    or why there is none."""

    departure: float | None
    reference_keyframes: int
    reference_videos: int
    reason: str = ""
    keyframe_departures: list[float] = field(default_factory=list)  # each keyframe's own, in the keyframes' order
    model_departure: float | None = None
    unlike_at: float = UNLIKE_AT

    @property
    def verdict(self) -> str | None:
        return None if self.departure is None else (UNLIKE if self.departure >= self.unlike_at else CONSISTENT)

    @property
    def outside(self) -> list[bool]:
        """Per suspect keyframe: `UNLIKE_AT` reference spreads or more from its mean."""
        return [d >= self.unlike_at for d in self.keyframe_departures]

    def line(self) -> str:
        """The verdict in words, with the size of the departure and what it rests on."""
        base = f"{self.reference_keyframes} reference keyframe(s) of {self.reference_videos} video(s)"
        if self.departure is None:
            return f"no reference verdict: {self.reason}"
        return (f"{self.verdict}: departure {self.departure:.2f} reference spreads (unlike at >= {self.unlike_at:g}), "
                f"{sum(self.outside)} of {len(self.outside)} keyframe(s) outside its spread, against {base}")

    def to_json(self) -> dict:
        return {"reference_departure": self.departure, "reference_keyframes": self.reference_keyframes,
                "reference_videos": self.reference_videos, "reference_verdict": self.verdict,
                "reference_reason": self.reason, "reference_model_departure": self.model_departure}


def compare(reference: Reference, suspect: np.ndarray, reference_scores: np.ndarray | None = None,
            suspect_scores: np.ndarray | None = None) -> Comparison:
    """The suspect's keyframe evidence (n, len(EVIDENCE)) against the reference; the
    model's P(fake) of both, where a checkpoint gave them, as a second evidence."""
    result = Comparison(None, reference.size, reference.videos, reference.usable())
    if result.reason:
        return result
    if not len(suspect):
        result.reason = "the suspect gave no face pair"
        return result
    result.departure = departure(reference, suspect)
    result.keyframe_departures = [float(x) for x in _mahalanobis_rows(reference, suspect)]
    if reference_scores is not None and suspect_scores is not None:
        result.model_departure = _score_departure(np.asarray(reference_scores), np.asarray(suspect_scores))
    return result
