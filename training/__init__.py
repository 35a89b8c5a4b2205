"""What makes a model: the Siamese noise-trace detector and its MesoNet baselines, noise
extractors and their weights, the data stages that stream shards, self-blending, the
residual cache, the training loop, checkpoints, denoiser pretraining and presets; and the
metrics and predictions the loop validates with.

May import `shards/` and torch; never Beam, dlib or ffmpeg (a GPU node installs only the
`training` extra), and none of `evaluation/`, `reports/`, `detection/`, which build on it.
"""
