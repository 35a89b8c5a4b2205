"""The shard builder: videos -> keyframes -> face/background pairs -> WebDataset shards.

Pure functions (`keyframes`, `faces`, `geometry`, `pairs`, `inputs`, `splits`) sit apart
from the Beam transforms (`transforms`, `run`) that call them, so `detect` and tests reuse
them without Beam.
"""
