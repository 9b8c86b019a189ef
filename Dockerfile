# memgraph-ha images: one multi-stage build, two targets. Build from the repository root:
#   docker build --target agent       -t memgraph-ha-agent:0.1.0 .        (the sidecar; the default target)
#   docker build --target coordinator -t memgraph-ha-coordinator:0.1.0 .  (standalone coordinator + CLI)
# Only the product is installed (agent, coordinator, ctl, hooks: setup.cfg); the emulators (sim/) and
# the tests never reach the build context (.dockerignore).

# ---- deps: the pinned dependencies, from the pins and the requirement list only -------------------------
# A code change does not invalidate this layer: only constraints.txt or setup.cfg do.
FROM python:3.11.14-slim-bookworm AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY constraints.txt setup.cfg ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); \
               print(c['options']['install_requires'])" > requirements.txt \
    && python -m venv /opt/memgraph-ha \
    && /opt/memgraph-ha/bin/pip install --no-cache-dir -c constraints.txt -r requirements.txt

# ---- build: the product itself, on top of the dependency layer (shared by both images) ----------------
FROM deps AS build
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY coordinator ./coordinator
COPY ctl ./ctl
COPY hooks ./hooks
RUN /opt/memgraph-ha/bin/pip install --no-cache-dir --no-deps .

# ---- runtime: what both images start from -------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime
COPY --from=build /opt/memgraph-ha /opt/memgraph-ha
ENV PATH=/opt/memgraph-ha/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# ---- coordinator: `memgraph-ha-coordinator` (out of the pods, with a kubeconfig) and `memgraph-ha` ----
FROM runtime AS coordinator
LABEL org.opencontainers.image.title="memgraph-ha-coordinator" \
      org.opencontainers.image.description="Standalone memgraph-ha coordinator and the memgraph-ha CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 memgraph-ha \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin memgraph-ha
USER 10001:10001
# CMD, not ENTRYPOINT: `docker run <image> memgraph-ha status` runs the CLI instead.
CMD ["memgraph-ha-coordinator"]

# ---- agent: the sidecar of every Memgraph pod (`memgraph-ha-agent`); last, so the default target ------
FROM runtime AS agent
LABEL org.opencontainers.image.title="memgraph-ha-agent" \
      org.opencontainers.image.description="HA sidecar agent for Memgraph Community on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid 101 / gid 103: the ids of the Memgraph image, so both containers share the log volume.
RUN groupadd --system --gid 103 memgraph \
    && useradd --system --uid 101 --gid 103 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin memgraph
USER 101:103
EXPOSE 8080
ENTRYPOINT ["memgraph-ha-agent"]
