# Worker image of the shard builder for Dataflow (or any portable Beam runner).
#
#   docker build -f docker/pipeline.Dockerfile -t REGION-docker.pkg.dev/PROJECT/REPO/noisetrace-pipeline:0.1.0 .
#   build-shards ... --runner DataflowRunner --sdk_container_image REGION-docker.pkg.dev/PROJECT/REPO/noisetrace-pipeline:0.1.0
#
# The base is the Beam Python SDK image of exactly the Beam and Python versions setup.py
# installs (tests/test_docker.py checks this): the SDK that submits a job and the one in
# the workers must match. Its entrypoint, /opt/apache/beam/boot, starts the SDK worker and
# is kept as it is. The user stays the base's (root): boot pip-installs whatever a job
# stages (--requirements_file, --extra_package) into the system interpreter at start-up,
# which a non-root user cannot do.
FROM apache/beam_python3.11_sdk:2.77.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what workers import: the pipeline and the shard contract. dlib-bin is a prebuilt
# wheel (no 10-minute compile) and imageio-ffmpeg ships a static ffmpeg binary.
WORKDIR /opt/noisetrace
COPY setup.py ./
COPY shards ./shards
COPY pipeline ./pipeline
RUN pip install ".[pipeline]" \
 && python -c "import apache_beam, dlib, imageio_ffmpeg, pipeline.transforms; print('beam', apache_beam.__version__, 'ffmpeg', imageio_ffmpeg.get_ffmpeg_exe())"

ENTRYPOINT ["/opt/apache/beam/boot"]
