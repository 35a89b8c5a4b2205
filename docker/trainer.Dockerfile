# GPU training image: CUDA PyTorch plus the `training` extra only (no Beam, no dlib).
#
#   docker build -f docker/trainer.Dockerfile -t REGION-docker.pkg.dev/PROJECT/REPO/noisetrace-trainer:0.1.0 .
#   docker run --gpus all --shm-size 8g -v /data:/data IMAGE --shards /data/shards --output /data/run
#
# Several GPUs or nodes: torchrun is on the PATH and starts the entrypoint once per GPU:
#   docker run ... --entrypoint torchrun IMAGE --nproc_per_node 4 --no-python train-from-shards ...
# (docs/scale-out.md has a command per case.)
# The Google Cloud CLI is installed so WebDataset can stream shards from a bucket:
# `gs://` URLs open through `gsutil cat`, `pipe:gcloud storage cat gs://...` URLs work too.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main" \
    > /etc/apt/sources.list.d/google-cloud-sdk.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends google-cloud-cli \
 && rm -rf /var/lib/apt/lists/*

# The base's CUDA build of torch must stay: pin it so the `training` extra cannot replace it.
WORKDIR /opt/noisetrace
COPY setup.py ./
COPY shards ./shards
COPY training ./training
# evaluate and visualize run on the same nodes (docs/scale-out.md)
COPY evaluation ./evaluation
COPY reports ./reports
RUN python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-pin.txt \
 && pip install --constraint /tmp/torch-pin.txt ".[training]" \
 && python -c "import torch, webdataset, training.cli, evaluation.cli, reports.cli; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

RUN useradd --create-home --uid 1000 trainer
USER trainer
WORKDIR /home/trainer

ENTRYPOINT ["train-from-shards"]
