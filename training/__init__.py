"""The Siamese noise-trace detector: model, streaming data, training, evaluation, pictures.

Needs `shards/` and torch; never Beam, dlib or ffmpeg, so a GPU node installs only the
`training` extra.
"""
