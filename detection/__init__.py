"""Judging videos: `detect`, its batch of inputs and results CSV, one video's verdict
against the checkpoint's threshold, the sentence that flags a weak checkpoint, and
`--reference`: each suspect's parameter-free evidence against authentic footage of its source.

May import `shards/`, `training/`, `reports/` and the pure modules of `pipeline/` (keyframes,
faces, pairs, inputs, fetch); never Beam, so it runs from the `detect` extra.
"""
