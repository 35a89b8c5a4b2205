"""The contract between the shard builder (`pipeline/`) and the trainer (`training/`).

It holds the sample schema, the atomic shard writer, the `_info.json` index and the
streaming reader. It depends on neither Beam nor dlib, so both halves can import it.
"""
from shards.schema import (
    CLS_FAKE,
    CLS_REAL,
    LABEL_TO_CLS,
    SPLITS,
    PairSample,
    decode_png,
    encode_png,
    make_key,
)

__all__ = [
    "CLS_FAKE",
    "CLS_REAL",
    "LABEL_TO_CLS",
    "SPLITS",
    "PairSample",
    "decode_png",
    "encode_png",
    "make_key",
]
