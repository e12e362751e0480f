# The project's three images, one target each:
#   buildah bud --target operator -t agenttype/operator:dev .   (also the default target)
#   buildah bud --target sidecar  -t agenttype/sidecar:dev .
#   buildah bud --target wrapper  -t agenttype/wrapper:dev .
# (docker build works the same.) Base images are build arguments: public images by default;
# tests/cluster/images.sh passes the ones it makes locally from a Debian minbase, because our
# machines pull from no registry. NODE_IMAGE needs node >= 22.18 (operator-dev's TypeScript runs
# as is, types stripped by Node; the operator and the sidecar are bundled) and npm;
# WRAPPER_BASE_IMAGE needs `cp`.
ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim
ARG WRAPPER_BASE_IMAGE=docker.io/library/busybox:1.37-musl

# ---- production dependencies, shared by operator and sidecar -------------------------------
# The optional build secret `ca` is a CA bundle for networks that intercept TLS (images.sh
# passes the host's); it is mounted for this step only and never lands in a layer.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca,target=/run/secrets/ca.crt \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca.crt npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
      --loglevel=error \
 && rm -rf /root/.npm

# The operator's image drops the large packages only the sidecar imports.
FROM deps AS deps-operator
RUN rm -rf node_modules/@aws-sdk node_modules/@aws-crypto node_modules/@smithy node_modules/@modelcontextprotocol

# ---- esbuild (the version package-lock.json pins), for the two bundles below -----------------
FROM deps AS esbuild
RUN --mount=type=secret,id=ca,target=/run/secrets/ca.crt \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca.crt npm install --no-save --ignore-scripts --no-audit --no-fund \
      --loglevel=error "esbuild@$(node -p "require('./package-lock.json').packages['node_modules/esbuild'].version")" \
 && rm -rf /root/.npm

# ---- the sidecar, bundled by sidecar/build.ts; each bundle in a stage of its own, so a target
# needs only its own sources in the context (Tilt sends each image only what it depends on)
FROM esbuild AS sidecar-build
COPY api/ api/
COPY sidecar/ sidecar/
RUN node sidecar/build.ts /dist/sidecar && chmod -R a+rX /dist

# ---- the operator, bundled by operator/bundle.ts ---------------------------------------------
FROM esbuild AS operator-build
COPY api/ api/
COPY operator/ operator/
RUN node operator/bundle.ts /dist/operator && chmod -R a+rX /dist

# ---- the wrapper's payload: node preload (types stripped), python shim, env.sh --------------
FROM ${NODE_IMAGE} AS wrapper-build
WORKDIR /src
COPY wrapper/ wrapper/
RUN node wrapper/build.ts /agenttype && chmod -R a+rX /agenttype

# ---- the CRI protocol definition the operator's containerd driver loads (ADR 0006): api.proto of
# k8s.io/cri-api, fetched now from the Go module proxy (GOPROXY's first URL, else the public one)
# and checked against its pinned go.sum hash; never kept in the repo.
FROM ${NODE_IMAGE} AS cri-proto
ARG GOPROXY
WORKDIR /src
COPY operator/drivers/containerd/cri-proto-fetch.ts operator/drivers/containerd/cri-api-pin.ts ./
RUN --mount=type=secret,id=ca,target=/run/secrets/ca.crt \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca.crt node cri-proto-fetch.ts /proto/api.proto

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
# uid 65532: the restricted profile's non-root user, the same as the pod contract's.
USER 65532:65532

# ---- sidecar: `node sidecar/main.mjs --config FILE`; agent API on 4000, health/metrics on 9090
# One bundle and its on-demand chunks, no node_modules. (A compile cache does not speed up the
# bundle's start: measured 0.25 s to ready with and without.) Flags: sidecar/build.ts.
FROM runtime AS sidecar
COPY --from=sidecar-build /dist/sidecar/ sidecar/
EXPOSE 4000 9090
ENTRYPOINT ["node", "--max-semi-space-size=2", "sidecar/main.mjs"]

# ---- wrapper: the init container; copies its payload into the directory given as argument ---
FROM ${WRAPPER_BASE_IMAGE} AS wrapper
COPY --from=wrapper-build /agenttype/ /agenttype/
USER 65532:65532
ENTRYPOINT ["cp", "-R", "/agenttype/."]
CMD ["/opt/agenttype"]

# ---- what both operator images hold: the packages the operator imports and the CRI definition
FROM runtime AS operator-base
COPY --from=deps-operator /app/node_modules/ node_modules/
COPY --from=cri-proto /proto/api.proto proto/cri-api/api.proto
ENV AGENTTYPE_CRI_PROTO=/app/proto/cri-api/api.proto
EXPOSE 8080

# ---- operator-dev: `node operator/main.ts`, the sources with types stripped by Node, for Tilt,
# whose live update syncs code into /app/operator and /app/api as the pod's uid 65532 ----------
FROM operator-base AS operator-dev
COPY --chown=65532:65532 api/ api/
COPY --chown=65532:65532 operator/ operator/
ENTRYPOINT ["node", "--max-semi-space-size=8", "--max-old-space-size=128", "operator/main.ts"]

# ---- operator (last: the default target): `node operator/main.mjs`, bundled by operator/bundle.ts;
# metrics and health on 8080. Node's compile cache, filled at build time, so the process starts
# sooner; read-only at run time. It is kept per uid: written as 65532, the uid the pod runs it as,
# then made root's (`--help` loads and compiles the whole bundle, then exits).
FROM operator-base AS operator
COPY --from=operator-build /dist/operator/main.mjs operator/main.mjs
# Two malloc arenas: less memory held by Node's idle threads (operator/bundle.ts, OPERATOR_ENV).
ENV MALLOC_ARENA_MAX=2
ENV NODE_COMPILE_CACHE=/app/.compile-cache
USER root
RUN install -d -o 65532 /app/.compile-cache
USER 65532:65532
RUN node operator/main.mjs --help > /dev/null
USER root
RUN chown -R root:root /app/.compile-cache && chmod -R a+rX,go-w /app/.compile-cache
USER 65532:65532
# A small young generation keeps the resident set near the live heap: 144 MiB at 1,000
# AgentTypes instead of 340; 4 MiB rather than 1 halves the collector's CPU (operator/bundle.ts;
# the tests and bench-operator run it the same way).
ENTRYPOINT ["node", "--max-semi-space-size=8", "--max-old-space-size=128", "operator/main.mjs"]
