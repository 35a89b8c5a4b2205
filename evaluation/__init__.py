"""Scoring a trained model: `evaluate` (one split of a shard directory), `crossval` (folds
disjoint by group, dataset or method) and `compare` (several evaluations side by side).

May import `shards/` and `training/`; never Beam, dlib, `pipeline/`, `reports/` or
`detection/`.
"""
