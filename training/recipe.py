"""The training recipe `train-from-shards` and `crossval` default to, importable without torch.

TrainConfig's own field defaults are the paper's plain recipe (the shards' fakes, 10
epochs), which the demo and the tests use. The command-line defaults differ where the
labelled real clips said so by cross-validation (README, Real data): the detector trains on
real pairs alone, half of each batch self-blended, so no source, generator or identity that
only fakes come from can become its cue; and it needs the epochs, because on those clips the
tiny model's loss leaves 0.69 only after 11-27 of them at 32 pairs a batch (the recipe
counts steps: a larger batch takes fewer of them per epoch).
"""
from __future__ import annotations

CLI_RECIPE = {"fake_source": "self-blend", "self_blend": 0.5, "epochs": 60, "batch_size": 32, "extractor": "dncnn"}

# `train-from-shards --self-blend-mask`: where a self-blend's ellipse is drawn (training.selfblend).
# `face-square`: in the geometry of the pair's face square, so a native window is blended where
# a swap pastes; `patch`: over the stored square as if it were the whole face (how blends were
# made before). The two agree on area-resized squares, which are the whole face square.
BLEND_MASKS = ("face-square", "patch")
