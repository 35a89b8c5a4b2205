"""What a person reads: the HTML page kit, the `detect --report` pages, the `report` page of a
training, evaluation or crossval run, and the noise-trace figures (`visualize`).

May import `shards/`, `training/`, `evaluation/` and the pure modules of `pipeline/`
(keyframes, geometry, pairs, faces); never Beam, and never `detection/` at run time (the
verdict types are named for type checking only).
"""
