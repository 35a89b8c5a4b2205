"""Judging videos: `detect`, its batch of inputs and results CSV, and one video's verdict
against the checkpoint's threshold.

May import `shards/`, `training/`, `reports/` and the pure modules of `pipeline/` (keyframes,
faces, pairs, inputs, fetch); never Beam, so it runs from the `detect` extra.
"""
