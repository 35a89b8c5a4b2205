"""Ablation of training recipes by cross-validation: one `crossval` per recipe on the same
folds, and a table of pooled video/frame AUC with the spread over folds.

    python bench/crossval_recipes.py --shards dev-shards --by dataset --output ablation \\
        --recipe base: --recipe blend:self_blend=0.5 --recipe sbi:fake_source=self-blend,self_blend=0.5

A recipe is `name:key=value,...` over train-from-shards' options (TrainConfig fields) and
crossval's `checkpoint` (best or last). Recipes start from TrainConfig's own defaults, the
paper's plain recipe on the shards' fakes, not from train-from-shards' (training.recipe):
`sbi:fake_source=self-blend,self_blend=0.5,epochs=60,batch_size=32` is the command line's;
`--common` sets options for every recipe (e.g. `preset=small,epochs=10,workers=0`).
`--seeds 0,1,2` runs every recipe once per seed (as `<name>-s<seed>`) and adds a row per
recipe over the seeds: the mean ± std of the seeds' fold means and of their within-group
figures, so a difference between recipes can be held against the spread between seeds.
Recipes that already have OUTPUT/<name>/crossval.json are not rerun, so an interrupted
ablation continues where it stopped. Prints a markdown table and writes ablation.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import fields
from typing import Any

from evaluation.crossval import RESULT_JSON, run_crossval
from training.train import TrainConfig

# train-from-shards' options (TrainConfig fields) and crossval's own that a recipe may set
_TYPES = {**{f.name: f.type for f in fields(TrainConfig)}, "checkpoint": "str"}


def _value(key: str, text: str) -> Any:
    if key not in _TYPES:
        raise SystemExit(f"unknown option {key!r}; choose from {sorted(_TYPES)}")
    kind = str(_TYPES[key])
    if "bool" in kind:
        return text.lower() in ("1", "true", "yes")
    if "int" in kind:
        return int(text)
    if "float" in kind:
        return float(text)
    return None if text == "none" else text


def parse_options(text: str) -> dict[str, Any]:
    """`key=value,key=value` -> {key: typed value}."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = _value(key.strip(), value.strip())
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _over_seeds(recipe: str, runs: list[tuple[float | None, float | None, float | None]]) -> str:
    """One row of a recipe over its seeds: mean ± sample std of each figure."""
    def cell(values: list[float | None]) -> str:
        xs = [v for v in values if v is not None]
        return f"{_fmt(statistics.mean(xs))} ± {_fmt(statistics.stdev(xs) if len(xs) > 1 else 0.0)}" if xs else "-"
    return f"| {recipe} | {len(runs)} | " + " | ".join(cell([r[i] for r in runs]) for i in range(3)) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--by", default="dataset", choices=("group", "dataset", "method"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--common", default="", help="options for every recipe, key=value,...")
    ap.add_argument("--recipe", action="append", required=True, help="name:key=value,... (repeatable)")
    ap.add_argument("--seeds", default="", help="run each recipe once per seed, e.g. 0,1,2, and summarise over them")
    args = ap.parse_args()
    common = parse_options(args.common)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    specs = [(f"{name}-s{seed}", f"{opts},seed={seed}".strip(","), name) for name, _, opts in
             (spec.partition(":") for spec in args.recipe) for seed in seeds] if seeds else \
        [(name, opts, name) for name, _, opts in (spec.partition(":") for spec in args.recipe)]
    rows, by_recipe = [], {}
    for name, opts, recipe in specs:
        out = os.path.join(args.output, name)
        started = time.perf_counter()
        if not os.path.exists(os.path.join(out, RESULT_JSON)):
            run_crossval(args.shards, out, by=args.by, folds=args.folds, **{**common, **parse_options(opts)})
        with open(os.path.join(out, RESULT_JSON), encoding="utf-8") as f:
            result = json.load(f)
        p, s = result["pooled"], result["fold_video_auc"]
        by_recipe.setdefault(recipe, []).append((s["mean"], p.get("within_group_video_auc"), p["video_auc"]))
        lo, hi = p.get("video_auc_ci95", (None, None))
        rows.append(f"| {name} | `{opts or '(defaults)'}` | {_fmt(p['video_auc'])} ({_fmt(lo)}-{_fmt(hi)}) | "
                    f"{_fmt(p['frame_auc'])} | "
                    f"{_fmt(s['mean'])} ± {_fmt(s['std'])} ({_fmt(s['min'])}-{_fmt(s['max'])}, {s['n']} folds) | "
                    f"{_fmt(p.get('within_group_video_auc'))} ({p.get('within_group_pairs', 0)}) | "
                    f"{time.perf_counter() - started:.0f} s |")
        print(rows[-1], flush=True)
    summary = [_over_seeds(recipe, runs) for recipe, runs in by_recipe.items()] if seeds else []
    table = "\n".join([
        f"shards `{args.shards}`, by {args.by}, common `{args.common or '(defaults)'}`", "",
        "| recipe | options | pooled video AUC (95% interval, groups resampled) | pooled frame AUC | fold video AUC mean ± std (min-max) "
        "| within-group video AUC (pairs) | wall |",
        "|---|---|---|---|---|---|---|", *rows, "",
        *(["| recipe | seeds | fold video AUC: mean of seeds ± std | within-group video AUC: mean ± std | pooled video AUC: mean ± std |",
           "|---|---|---|---|---|", *summary, ""] if summary else [])])
    with open(os.path.join(args.output, "ablation.md"), "a", encoding="utf-8") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
