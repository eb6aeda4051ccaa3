# enricher: Sigma detection for Logstash and Beats pipelines, served on port 8080.
#
#   docker build -t enricher .
#   docker run -p 8080:8080 -e ENRICHER_CLUSTER_URL=http://elasticsearch:9200 enricher
#
# Every dependency is published as a manylinux wheel for CPython 3.11 on
# x86_64 and aarch64 (checked with pip download --only-binary=:all:), so the
# slim image needs no compiler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build the wheel from the files it is made of: hatchling reads the readme and
# licence files named in pyproject.toml, and force-includes mappings/.
WORKDIR /build
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY enricher ./enricher
COPY mappings ./mappings
RUN pip install . && rm -rf /build

# Fixed numeric ids, so that orchestrators can check runAsNonRoot. Without a
# cluster, enricher writes its alert and dead-letter files into the working
# directory, which this user owns.
RUN groupadd --system --gid 10001 enricher \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/enricher enricher \
    && install --directory --owner=enricher --group=enricher /var/lib/enricher
WORKDIR /var/lib/enricher
USER 10001:10001

ENV ENRICHER_HOST=0.0.0.0 \
    ENRICHER_PORT=8080
EXPOSE 8080

CMD ["enricher", "serve"]
