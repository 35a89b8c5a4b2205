"""Accuracy and ROC AUC in numpy (no sklearn on a GPU node), tie-aware like sklearn's."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(np.mean((np.asarray(probs) >= threshold) == (labels == 1)))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score, starting at (0, 0)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # The last index of each run of equal scores: tied samples move the curve together.
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1] if scores.size else np.array([], int)
    tps = np.cumsum(labels)[last]
    fps = (last + 1) - tps
    n_pos, n_neg = labels.sum(), (~labels).sum()
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.full(last.size + 1, np.nan)
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.full(last.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, scores[last]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (AUC is undefined)."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids; np.trapezoid needs numpy 2


def per_group_mean(groups: list[str], labels: np.ndarray, probs: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(group names, label, mean probability) per group, e.g. per video: a video's score
    is the mean of its frames' fake probabilities."""
    sums: dict[str, list[float]] = defaultdict(list)
    label_of: dict[str, int] = {}
    for g, y, p in zip(groups, labels, probs):
        sums[g].append(float(p))
        label_of[g] = int(y)
    names = sorted(sums)
    return names, np.array([label_of[g] for g in names]), np.array([np.mean(sums[g]) for g in names])


def within_group_auc(groups: list[str], labels: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """(AUC, pairs) over the (real, fake) pairs that share a group: the share of them in
    which the fake scores higher, ties counting half; NaN when no group holds both classes.

    A group's real and fake clips share identity, camera, compression and often the very
    background, so this is the one comparison in which where a clip came from tells
    nothing: a model that learnt the source ranks them alike (0.5), one that sees what the
    swap changed ranks the fake higher, even where its scores do not carry across sources."""
    by_group: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for g, y, s in zip(groups, labels, scores):
        by_group[g][int(y)].append(float(s))
    wins, pairs = 0.0, 0
    for real, fake in by_group.values():
        if real and fake:
            r, f = np.array(real)[:, None], np.array(fake)[None, :]
            wins += float(np.sum(f > r) + 0.5 * np.sum(f == r))
            pairs += r.size * f.size
    return (wins / pairs if pairs else float("nan")), pairs


def group_bootstrap_ci(
    statistic: Callable[[list[str], np.ndarray, np.ndarray], float],
    groups: list[str], labels: np.ndarray, scores: np.ndarray,
    draws: int = 1000, level: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(groups, labels, scores)`, resampling
    whole groups with replacement; (NaN, NaN) when no draw defines it.

    Groups, not videos, are the independent draws: the videos of one FF++ id or one DFD
    actor share identity, camera and background, so resampling videos one by one would
    pretend to more evidence than a set of a few dozen groups holds. Seeded, so a report
    regenerates identically."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    names = sorted(set(groups))
    members = {g: [] for g in names}
    for i, g in enumerate(groups):
        members[g].append(i)
    index = [np.array(members[g]) for g in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = np.concatenate([index[j] for j in rng.integers(0, len(names), len(names))])
        value = statistic([groups[i] for i in pick], labels[pick], scores[pick])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def video_auc(groups: list[str], labels: np.ndarray, scores: np.ndarray) -> float:
    """`roc_auc` in `group_bootstrap_ci`'s statistic signature (the groups only resample)."""
    return roc_auc(labels, scores)


def finite_or_none(x: float) -> float | None:
    """NaN (e.g. the AUC of a one-class set) -> None, because JSON has no NaN."""
    return None if isinstance(x, float) and math.isnan(x) else x


def equal_error(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, rate) at the equal-error point: the ROC point where the false-positive
    rate is closest to the false-negative rate, with `rate` their mean there; (NaN, NaN)
    when a class is missing.

    The threshold sits halfway between the lowest score that point calls fake and the next
    lower score, so a score exactly on a validation sample's does not decide a verdict. It
    treats both errors as equally bad, which is the one choice that needs no cost from the
    user; `detect --threshold` overrides it."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan"), float("nan")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    cut = thresholds[i]
    if math.isinf(cut):  # the point that calls nothing fake: just above the highest score
        cut = thresholds[1] + 1e-6 if thresholds.size > 1 else 0.5
    elif i + 1 < thresholds.size:
        cut = (cut + thresholds[i + 1]) / 2
    return float(cut), float((fpr[i] + fnr[i]) / 2)
