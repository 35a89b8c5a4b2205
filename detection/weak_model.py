"""The one sentence that tells a verdict's reader the model behind it is weak.

A verdict reads the same whether the model behind it ranks fakes well or no better than a
coin, and a reader of one page cannot tell which; the checkpoint knows (its validation
AUC, recorded with the epoch it was saved at). Under `WEAK_AUC`, or with no AUC recorded
(a validation split of one class, an old checkpoint), every output says so beside the
verdicts: `detect`'s stderr, each `--json` record, the report's index and video pages.
"""
from __future__ import annotations

import math
from typing import Any

WEAK_AUC = 0.75


def model_warning(ckpt: dict[str, Any]) -> str | None:
    """The sentence for a weak or unproven checkpoint; None for one whose validation AUC
    is at least `WEAK_AUC`."""
    auc = (ckpt.get("metrics") or {}).get("val_auc")
    if auc is None or not math.isfinite(auc):
        return ("This model may be weak: its checkpoint records no validation AUC (its validation split held one "
                "class, or it predates the record), so there is no evidence its verdicts beat chance.")
    if auc < WEAK_AUC:
        return (f"This model is weak: its validation AUC was {auc:.3f}, under {WEAK_AUC}, so many of its verdicts "
                "will be wrong.")
    return None
