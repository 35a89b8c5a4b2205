"""`crossval`: cross-validation that keeps groups, datasets or methods apart.

On a small real set a single split is luck: one identity more or less in val moves the
AUC by tenths, and a model can score well by recognising where a clip came from. Here every
pair of the shards (all splits pooled) is scored exactly once, by a model trained without
any pair of its group:

- `--by group`: K folds of whole groups (identity / source video), stratified so that
  groups with reals and groups with fakes are spread over the folds;
- `--by dataset`: leave one dataset out (the pair json's `dataset`);
- `--by method`: leave one manipulation method out (`method`, from FF++'s
  `manipulated_sequences/<method>`; fakes without one form the `unspecified` fold). Real
  pairs have no method: their groups are dealt over the method folds, so each is scored once.

A fold's training pool is every pair whose group has no pair in the held-out fold (and, for
dataset and method, not of the held-out dataset or method). A few of those groups are held
back as validation for `best.pt`. Each fold is written out as an ordinary shard directory,
trained with `train-from-shards`' own code and scored with `evaluate`'s, so any fold can be
rerun or inspected by hand. Copying pairs costs disk (the whole set once per fold): this is
a tool for the small sets where cross-validation matters.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shards.checked import bad_shard, check_length
from shards.info import INFO_NAME, ShardRecord, build_info, dumps_info
from shards.raw import Members, RawSample
from shards.reader import sample_meta, shard_members
from shards.source import ShardSource, open_shards
from shards.writer import shard_name, write_shard

BY = ("group", "dataset", "method")
UNSPECIFIED_METHOD = "unspecified"
RESULT_JSON = "crossval.json"
RESULT_MD = "crossval.md"
# A held-out fold with fewer videos than this of a class gets a warning in crossval.md:
# with one fake video, its AUC says which side of the reals one clip fell, not how well
# the recipe generalises.
FEW_VIDEOS = 3
TRAIN_SHARDS = 8  # per fold; train-from-shards needs at least --workers of them
EVAL_SHARDS = 2
_FOLD_DIR = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Pair:
    """One pair as its undecoded tar members and its json."""

    key: str
    members: Members
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return self.meta["label"]

    @property
    def group(self) -> str:
        return self.meta["group"]


@dataclass(frozen=True)
class FoldPlan:
    """Which pairs one fold trains on, validates on (for best.pt) and scores."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def load_pairs(spec: str | ShardSource, on_bad_shard: str = "stop") -> dict[str, Pair]:
    """Every pair of every split of `--shards` (a root, a brace pattern, or those already
    opened), undecoded. A shard that cannot be read whole, or holds other than its indexed
    count, stops the run naming it, or is left out with a warning (`--on-bad-shard skip`)."""
    source = open_shards(spec)
    pairs: dict[str, Pair] = {}
    for split in sorted(source.info["splits"]):
        for url, length in source.lengths(split).items():
            try:
                found = _shard_pairs(url, length)
            except Exception as exc:  # tar, gzip, JSON and count errors all mean "this shard is bad"
                bad_shard(url, exc, on_bad_shard)
                continue
            for key, pair in found.items():
                if key in pairs:
                    raise ValueError(f"{url}: pair {key} appears in two shards; crossval needs each pair once")
                pairs[key] = pair
    if not pairs:
        raise ValueError(f"{source.spec}: no pairs to cross-validate")
    return pairs


def _shard_pairs(url: str, length: int) -> dict[str, Pair]:
    """{key: pair} of one shard, read front to back and counted against its index entry."""
    found = {key: Pair(key, members, sample_meta(members)) for key, members in shard_members(url).items()}
    check_length(len(found), length)
    return found


def _rank(*parts: object) -> str:
    """A stable pseudo-random order for names (Python's hash() changes every process)."""
    return hashlib.sha1("\0".join(map(str, parts)).encode("utf-8")).hexdigest()


def _groups(pairs: Iterable[Pair]) -> dict[str, set[str]]:
    """{group: labels it holds}."""
    out: dict[str, set[str]] = {}
    for p in pairs:
        out.setdefault(p.group, set()).add(p.label)
    return out


def fold_of_pairs(pairs: dict[str, Pair], by: str, folds: int = 5, seed: int = 0) -> dict[str, str]:
    """{pair key: name of the fold that scores it}."""
    if by == "dataset":
        return {k: p.meta["dataset"] for k, p in pairs.items()}
    groups = _groups(pairs.values())
    if by == "group":
        if folds < 2:
            raise ValueError(f"--folds must be at least 2, got {folds}")
        if len(groups) < folds:
            raise ValueError(f"{len(groups)} groups cannot make {folds} folds: use --folds {max(2, len(groups))} or fewer")
        # groups of one composition (real only, fake only, both) are dealt round-robin in a
        # seeded order, so every fold gets its share of each
        order = sorted(groups, key=lambda g: (sorted(groups[g]), _rank(seed, g)))
        width = len(str(folds))
        fold = {g: f"fold-{i % folds + 1:0{width}d}" for i, g in enumerate(order)}
        return {k: fold[p.group] for k, p in pairs.items()}
    if by == "method":
        methods = sorted({p.meta.get("method") or UNSPECIFIED_METHOD for p in pairs.values() if p.label == "fake"})
        if not methods:
            raise ValueError("--by method: the shards hold no fakes; use --by group or --by dataset")
        real_groups = sorted({p.group for p in pairs.values() if p.label == "real"}, key=lambda g: _rank(seed, g))
        real_fold = {g: methods[i % len(methods)] for i, g in enumerate(real_groups)}
        return {k: (p.meta.get("method") or UNSPECIFIED_METHOD) if p.label == "fake" else real_fold[p.group]
                for k, p in pairs.items()}
    raise ValueError(f"--by must be one of {BY}, got {by!r}")


def _validation_groups(pool: list[Pair], fraction: float, seed: int) -> set[str]:
    """Whole groups, about `fraction` of the pool's pairs, in a seeded order; both classes
    in validation where that leaves both in training too."""
    sizes: dict[str, int] = {}
    for p in pool:
        sizes[p.group] = sizes.get(p.group, 0) + 1
    labels = _groups(pool)
    classes = set().union(*labels.values())
    order = sorted(sizes, key=lambda g: _rank(seed, "val", g))

    def trainable(chosen: set[str]) -> bool:
        return len(chosen) < len(order) and classes <= set().union(*(labels[g] for g in order if g not in chosen))

    chosen: set[str] = set()
    for g in order:
        if sum(sizes[c] for c in chosen) >= fraction * len(pool):
            break
        if trainable(chosen | {g}):
            chosen.add(g)
    for missing in sorted(classes - set().union(set(), *(labels[g] for g in chosen))):
        spare = [g for g in order if g not in chosen and missing in labels[g] and trainable(chosen | {g})]
        chosen |= set(spare[:1])
    if not chosen:
        raise ValueError(f"a fold's training pool holds {len(order)} group(s): too few to hold one out for validation; "
                         "use fewer --folds, or shards with more groups")
    return chosen


def plan_folds(pairs: dict[str, Pair], by: str, folds: int = 5, seed: int = 0, val_fraction: float = 0.15) -> list[FoldPlan]:
    """The folds, in name order: together their `test` keys are every pair, once."""
    fold_of = fold_of_pairs(pairs, by, folds, seed)
    plans = []
    for name in sorted(set(fold_of.values())):
        test = sorted(k for k, f in fold_of.items() if f == name)
        held_groups = {pairs[k].group for k in test}
        pool = [pairs[k] for k in sorted(pairs) if fold_of[k] != name and pairs[k].group not in held_groups]
        if {p.label for p in pool} != {"real", "fake"}:
            raise ValueError(f"fold {name!r}: what is left to train on holds only {sorted({p.label for p in pool}) or 'nothing'}; "
                             "this data cannot be cross-validated that way; use another --by")
        val_groups = _validation_groups(pool, val_fraction, seed)
        plans.append(FoldPlan(name, tuple(p.key for p in pool if p.group not in val_groups),
                              tuple(p.key for p in pool if p.group in val_groups), tuple(test)))
    return plans


def write_fold_shards(root: str, plan: FoldPlan, pairs: dict[str, Pair], extra: dict[str, Any], train_shards: int) -> str:
    """The fold as a shard directory build-shards could have written: pairs dealt
    round-robin over sorted keys, copied byte for byte; returns `root`."""
    if os.path.isdir(root):
        shutil.rmtree(root)  # a rerun writes the fold anew
    records = []
    for split, keys, count in (("train", plan.train, train_shards), ("val", plan.val, EVAL_SHARDS), ("test", plan.test, EVAL_SHARDS)):
        os.makedirs(os.path.join(root, split))
        for i in range(min(count, max(1, len(keys)))):
            chosen = [pairs[k] for k in keys[i::count]]
            name = f"{split}/{shard_name(i)}"
            write_shard(os.path.join(root, name), [RawSample(p.key, p.members, p.label) for p in chosen])
            counts = {label: sum(p.label == label for p in chosen) for label in sorted({p.label for p in chosen})}
            records.append(ShardRecord(split, name, len(chosen), counts))
    with open(os.path.join(root, INFO_NAME), "w", encoding="utf-8") as f:
        f.write(dumps_info(build_info(records, extra)))
    return root


def _read_predictions(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pooled_summary(predictions: list[dict[str, Any]], folds: list[dict[str, Any]]) -> dict[str, Any]:
    """`evaluate`'s metrics over prediction lines from several folds; the within-group
    figure from the folds' own, pair-weighted, so that each real/fake comparison is made by
    one model (by method, a group's reals and fakes sit in different folds)."""
    from evaluation.evaluate import summarize

    labels = np.array([r["cls"] for r in predictions], dtype=np.int64)
    probs = np.array([r["fake_probability"] for r in predictions], dtype=np.float64)
    pooled = summarize(labels, probs, predictions)
    scored = [f["metrics"] for f in folds if f["metrics"]["within_group_pairs"]]
    pairs = sum(m["within_group_pairs"] for m in scored)
    pooled["within_group_pairs"] = pairs
    pooled["within_group_video_auc"] = (
        sum(m["within_group_video_auc"] * m["within_group_pairs"] for m in scored) / pairs if pairs else None)
    return pooled


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean, sample std, min and max of the defined values (a one-class fold has no AUC)."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"n": len(xs), "mean": float(np.mean(xs)), "std": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs)}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _row(name: str, m: dict[str, Any]) -> str:
    c, vc = m["counts"], m["video_counts"]
    return (f"| {name} | {c['real']} / {c['fake']} | {vc['real']} / {vc['fake']} | {_fmt(m['frame_auc'])} | "
            f"{_fmt(m['frame_accuracy'])} | {_fmt(m['video_auc'])} | {_fmt(m['video_accuracy'])} |")


def _few_videos(folds: list[dict[str, Any]]) -> list[str]:
    """crossval.md's warning about folds whose video AUC rests on a handful of videos."""
    few = [f"{f['name']} ({vc['real']} real / {vc['fake']} fake)" for f in folds
           for vc in [f["metrics"]["video_counts"]] if 0 < min(vc.values()) < FEW_VIDEOS]
    if not few:
        return []
    return [f"Held out with fewer than {FEW_VIDEOS} videos of a class, so their video AUC is mostly luck: "
            + ", ".join(few) + ".", ""]


def _interval(pooled: dict[str, Any]) -> str:
    """crossval.md's line on how far the pooled video AUC moves with the draw of groups."""
    lo, hi = pooled["video_auc_ci95"]
    return (f"Pooled video AUC, 95% interval with whole groups resampled ({pooled['video_auc_groups']} groups): "
            f"{_fmt(lo)}-{_fmt(hi)}. It covers which groups were drawn, not how the folds' models differ: "
            "a pooled figure far from 0.5 whose folds sit near it is an offset between folds, not skill.")


def _within_groups(pooled: dict[str, Any], folds: list[dict[str, Any]]) -> str:
    """crossval.md's line on the within-group video AUC, pooled and per fold that has pairs."""
    per_fold = [f"{f['name']} {_fmt(m['within_group_video_auc'])} ({m['within_group_pairs']})"
                for f in folds for m in [f["metrics"]] if m["within_group_pairs"]]
    return ("Within groups (each fake video against the real videos of its own group, both scored by one "
            f"fold's model; 0.5: ranked alike): video AUC {_fmt(pooled['within_group_video_auc'])} over "
            f"{pooled['within_group_pairs']} pairs; per fold: {', '.join(per_fold) or 'none'}.")


def markdown(result: dict[str, Any]) -> str:
    """crossval.md: per fold, per dataset, per method and pooled figures."""
    head = ("| {} | pairs real / fake | videos real / fake | frame AUC | frame acc | video AUC | video acc |\n"
            "|---|---|---|---|---|---|---|")
    pooled = result["pooled"]
    lines = [f"# Cross-validation by {result['by']}: {len(result['folds'])} folds", "",
             "Every pair is scored once, by the model of the fold that held its group out.", "",
             head.format("fold")]
    lines += [_row(f["name"], f["metrics"]) for f in result["folds"]]
    lines += ["", head.format("dataset (pooled)")] + [_row(k, v) for k, v in pooled["per_dataset"].items()]
    if pooled["per_method"]:
        lines += ["", head.format("method (its fakes vs all reals)")] + [_row(k, v) for k, v in pooled["per_method"].items()]
    s = result["fold_video_auc"]
    lines += ["", head.format(""), _row("**pooled**", pooled), "",
              f"Fold video AUC: mean {_fmt(s['mean'])}, std {_fmt(s['std'])}, min {_fmt(s['min'])}, "
              f"max {_fmt(s['max'])} over the {s['n']} fold(s) holding both classes.", "",
              _interval(pooled), "",
              *_few_videos(result["folds"]), _within_groups(pooled, result["folds"]), ""]
    return "\n".join(lines)


def run_crossval(shards: str, output: str, by: str = "group", folds: int = 5, val_fraction: float = 0.15,
                 fold_seed: int = 0, checkpoint: str = "best", **train_options: Any) -> dict[str, Any]:
    """Plan, train and score every fold with its `checkpoint` ("best" or "last"); write
    OUTPUT/crossval.json and crossval.md."""
    from evaluation.evaluate import PREDICTIONS_NAME, run_evaluation
    from training.train import BEST_NAME, LAST_NAME, TrainConfig, run_training

    checkpoint_name = {"best": BEST_NAME, "last": LAST_NAME}[checkpoint]

    source = open_shards(shards)  # once: over a URL each read of _info.json is a download
    pairs = load_pairs(source, train_options.get("on_bad_shard", "stop"))
    plans = plan_folds(pairs, by, folds, fold_seed, val_fraction)
    extra = {k: v for k, v in source.info.items() if k not in ("splits", "name")}
    os.makedirs(output, exist_ok=True)
    fold_results, predictions = [], []
    for plan in plans:
        fold_dir = os.path.join(output, _FOLD_DIR.sub("_", plan.name))
        fold_shards = write_fold_shards(os.path.join(fold_dir, "shards"), plan, pairs,
                                        {**extra, "crossval": {"by": by, "fold": plan.name, "source": shards}},
                                        max(TRAIN_SHARDS, train_options.get("workers", 0)))
        run = os.path.join(fold_dir, "run")
        run_training(TrainConfig(shards=fold_shards, output=run, **train_options))
        evaluation = os.path.join(fold_dir, "eval")
        metrics = run_evaluation(os.path.join(run, checkpoint_name), fold_shards, evaluation, split="test",
                                 workers=min(train_options.get("workers", 0), EVAL_SHARDS), device=train_options.get("device"),
                                 residual_cache=train_options.get("residual_cache"))
        predictions += _read_predictions(os.path.join(evaluation, PREDICTIONS_NAME))
        fold_results.append({
            "name": plan.name, "dir": fold_dir, "checkpoint": metrics["checkpoint"],
            "pairs": {"train": len(plan.train), "val": len(plan.val), "test": len(plan.test)},
            "held_out_datasets": sorted({pairs[k].meta["dataset"] for k in plan.test}),
            "metrics": {k: v for k, v in metrics.items() if k not in ("checkpoint", "shards", "split", "model")},
        })
    result = {
        "shards": shards, "by": by, "folds": fold_results, "pooled": pooled_summary(predictions, fold_results),
        "fold_video_auc": spread(f["metrics"]["video_auc"] for f in fold_results),
        "fold_frame_auc": spread(f["metrics"]["frame_auc"] for f in fold_results),
        "options": {"folds": folds, "val_fraction": val_fraction, "fold_seed": fold_seed, "checkpoint": checkpoint,
                    "train": train_options},
    }
    with open(os.path.join(output, RESULT_JSON), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    with open(os.path.join(output, RESULT_MD), "w", encoding="utf-8") as f:
        f.write(markdown(result))
    return result
