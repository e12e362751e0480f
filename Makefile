# The front door: every build, test and cluster command of the project goes through here.
# `make` bootstraps its own toolchain: when the node on PATH is older than 22.12 it installs
# the pinned Node 24 from the npm registry's `node` package into a cache outside the repo.

NODE_VERSION := 24.21.0
AGENTTYPE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/agenttype
export AGENTTYPE_CACHE

SYSTEM_NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null && echo yes)
ifeq ($(SYSTEM_NODE_OK),yes)
NODE := $(shell command -v node)
else
NODE_PREFIX := $(AGENTTYPE_CACHE)/node-v$(NODE_VERSION)
NODE := $(NODE_PREFIX)/node_modules/node/bin/node
export PATH := $(dir $(NODE)):$(PATH)
endif

DEPS := node_modules/.package-lock.json

.DEFAULT_GOAL := help
.PHONY: help deps generate lint format tools test test-unit test-integration check-generated \
	plugin install-plugin test-e2e test-kind test-hosts test-hosts-containerd2 guest-image test-guests test-beside-guests test-smoke images up down cluster-up cluster-down bench bench-operator bench-sidecar bench-peers bench-proxy-parts bench-hosts

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(NODE):
	@command -v npm >/dev/null || { echo "error: npm is needed to install Node $(NODE_VERSION) from the npm registry" >&2; exit 1; }
	@echo "node on PATH is older than 22.12: installing Node $(NODE_VERSION) into $(NODE_PREFIX)"
	npm install --prefix "$(NODE_PREFIX)" --no-save --no-audit --no-fund --loglevel=error node@$(NODE_VERSION)
	@"$(NODE)" --version

$(DEPS): package.json package-lock.json | $(NODE)
	npm ci --no-audit --no-fund
	@touch $@

deps: $(DEPS) ## install Node (if needed) and the npm dependencies

generate: $(DEPS) ## write crds/*.yaml from the zod schemas (and their copies for kustomize and Helm) and the RBAC
	npm run --silent generate
	config/sync-crds.sh

GENERATED := crds/ config/crd/bases/ charts/agenttype-operator/files/crds/ \
	config/rbac/role.yaml config/rbac/leader_election_role.yaml config/rbac/hosts_role.yaml \
	config/rbac/subresources_role.yaml config/rbac/subresources_ca_role.yaml charts/agenttype-operator/files/rbac/
check-generated: generate ## fail when the committed CRDs or RBAC differ from what the generator writes
	@git diff --exit-code --stat -- $(GENERATED) || { echo "error: generated files are out of date; run 'make generate' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { git status --porcelain -- $(GENERATED); echo "error: untracked generated files; run 'make generate' and commit" >&2; exit 1; }

lint: $(DEPS) ## biome (lint + format check), the TypeScript type check, shellcheck on every shell script, kube-score
	npm run --silent lint
	tests/shellcheck.sh
	tests/kube-score/kube-score.sh

PLUGIN_DIR ?= $(HOME)/.local/bin
plugin: $(DEPS) ## build kubectl-agenttype (one executable, ADR 0013), its krew archive and manifest, into dist/plugin
	node plugin/build.ts dist/plugin

install-plugin: plugin ## install kubectl-agenttype and kubectl's completion hook for it into PLUGIN_DIR (default ~/.local/bin)
	install -D -m 0755 dist/plugin/kubectl-agenttype "$(PLUGIN_DIR)/kubectl-agenttype"
	printf '#!/bin/sh\n# kubectl asks this for completions of `kubectl agenttype ...`\nexec kubectl-agenttype __complete "$$@"\n' > "$(PLUGIN_DIR)/kubectl_complete-agenttype"
	chmod 0755 "$(PLUGIN_DIR)/kubectl_complete-agenttype"
	@echo "installed $(PLUGIN_DIR)/kubectl-agenttype: try kubectl agenttype list (PLUGIN_DIR must be on PATH)"

format: $(DEPS) ## rewrite files in the project's format
	npm run --silent format

test-unit: $(DEPS) ## unit tests: pure logic, seconds
	npm run --silent test:unit

test-integration: $(DEPS) ## integration tests on a real etcd + kube-apiserver + controller-manager
	npx vitest run --project integration

test-e2e: $(DEPS) ## end-to-end tests on the full local cluster (kubelet, containerd, runc, CNI)
	npx vitest run --project e2e

test-hosts: $(DEPS) ## host tests: a test host (own sshd and containerd in a network namespace) over SSH
	npx vitest run --project hosts

test-hosts-containerd2: $(DEPS) ## the host tier against a containerd 2.x built from the Go module proxy (not in make test)
	bin=$$(tests/hosts/build-containerd.sh) && \
	  AGENTTYPE_HOST_STATE=/var/lib/agenttype-host-containerd2 AGENTTYPE_HOST_CONTAINERD_BIN=$$bin \
	  npx vitest run --project hosts

guest-image: ## the KVM guest image (Debian packages only) into $(AGENTTYPE_CACHE)/guest, reused while its inputs are unchanged
	operator/drivers/kvm/guest/build-image.sh

test-guests: $(DEPS) ## guest tests: libvirtd and QEMU on a KVM host (tests/guests/kvm-host.sh) boot the guest image and run an agent in it; then make bench-kvm at a tiny size
	npx vitest run --project guests
	npx vitest run --project smoke-kvm

test-kind: $(DEPS) ## Docker (an engine of its own, the host's iptables untouched), docker build of every Dockerfile target, kind and Tilt
	npx vitest run --project kind

test-smoke: $(DEPS) ## the README's commands run as a user runs them: make up twice, down, images, cluster-up/down, every bench-* at a tiny size
	npx vitest run --project smoke

images: | $(NODE) ## build every image with buildah (no Docker) and import them into the node's containerd
	tests/cluster/images.sh all
	tests/cluster/images.sh project
	tests/cluster/images.sh e2e

# `make up` and `make down` act on the project's own cluster whatever KUBECONFIG says in the
# environment (`make up` itself advises exporting it); KUBECONFIG= or CONTEXT= on the make line
# choose another cluster.
DEMO_CLUSTER := $(if $(filter command line,$(origin KUBECONFIG)),--kubeconfig "$(KUBECONFIG)") \
	$(if $(filter command line,$(origin CONTEXT)),--context "$(CONTEXT)")
up: $(DEPS) ## local cluster (or KUBECONFIG=/CONTEXT= given here), images, operator via Helm, two demo agents, Ready
	tests/e2e/demo.sh up $(DEMO_CLUSTER)

down: ## remove the demo and the operator; stop the local cluster (or only remove them from KUBECONFIG=/CONTEXT=)
	tests/e2e/demo.sh down $(DEMO_CLUSTER)

TIER ?= full
cluster-up: ## start the local cluster: TIER=control-plane or TIER=full (the default)
	tests/cluster/cluster.sh up $(TIER)

cluster-down: ## stop the local cluster and remove what it left
	tests/cluster/cluster.sh down

BENCH_N ?= 1000
# Starts the control plane if it is not running, and then stops it again, as the integration tier does.
# A control plane it started is started afresh (etcd wiped) before each side, so that neither
# runs on what the other left; one already running is shared, sides alternating.
bench-operator: $(DEPS) ## time the operator on N AgentTypes against the API server's ceiling; writes of a restart and a resync [BENCH_ROUNDS=2 BENCH_FIRST=ceiling|operator BENCH_CLOCK_ONLY=1 BENCH_PIN=1]
	@running=$$(tests/cluster/cluster.sh status control-plane >/dev/null 2>&1 && echo yes); \
	kubeconfig=$$(tests/cluster/cluster.sh up control-plane | tail -n 1) && \
	  node tests/bench/operator.ts --n $(BENCH_N) --kubeconfig "$$kubeconfig" $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) $(if $(BENCH_FIRST),--first $(BENCH_FIRST)) \
	    $(if $(filter 1,$(BENCH_CLOCK_ONLY)),--clock-only) $(if $(filter 1,$(BENCH_PIN)),--pin) \
	    $$([ -n "$$running" ] || echo --fresh-control-plane); \
	status=$$?; [ -n "$$running" ] || tests/cluster/cluster.sh down control-plane >&2; exit $$status

bench-sidecar: $(DEPS) ## the sidecar's added latency, throughput and memory against a direct upstream [BENCH_ROUNDS=5 BENCH_ROUND_MS=1000]
	node tests/bench/sidecar.ts $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) $(if $(BENCH_ROUND_MS),--round-ms $(BENCH_ROUND_MS))

bench-peers: $(DEPS) ## the sidecar beside LiteLLM's proxy (PyPI, into a venv under $(AGENTTYPE_CACHE)), a bare node proxy and direct: latency at 20/200/1000 req/s, throughput, CPU per request, RSS [BENCH_ROUNDS=3 BENCH_ROUND_MS=2000]
	node tests/bench/peers.ts $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) $(if $(BENCH_ROUND_MS),--round-ms $(BENCH_ROUND_MS))

bench-proxy-parts: $(DEPS) ## the sidecar's CPU per pass-through request part by part (parse, deadline, metrics, dependencies, fastify, the sidecar) over a bare node proxy's, pinned, at a fixed rate; BENCH_BASELINE=DIR measures another checkout's sidecar beside [BENCH_ROUNDS=12 BENCH_ROUND_MS=3000]
	node tests/bench/proxy-parts.ts $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) $(if $(BENCH_ROUND_MS),--round-ms $(BENCH_ROUND_MS)) $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE))

# Brings up a host and a control plane of its own (not the host tier's), and takes down what it brought up.
bench-hosts: $(DEPS) ## time from create to Ready of a containerd-host AgentType against the same replica started straight through the host's CRI [BENCH_ROUNDS=5]
	tests/bench/hosts.sh $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS))

bench-kvm: $(DEPS) ## apply to Ready of an agent in a KVM guest (boot and agent parts), suspend and resume, with the acceleration used [BENCH_ROUNDS=3]
	node tests/bench/kvm.ts $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS))

bench: bench-operator bench-sidecar bench-peers bench-proxy-parts bench-hosts bench-kvm ## every benchmark (never part of make test)

# The Go-built tools the tiers use, each reused from $(AGENTTYPE_CACHE) while its pin is unchanged.
# `make test` builds them (and more) ahead in the background instead: tests/prebuild.sh.
tools: ## build the pinned Kubernetes components, etcd, helm, crictl, CoreDNS, Tilt, kind and kube-score from the Go module proxy
	tests/cluster/build-components.sh >/dev/null
	tests/cluster/build-coredns.sh >/dev/null
	tests/cluster/build-tilt.sh >/dev/null
	tests/kind/build-kind.sh >/dev/null
	tests/cluster/build-kube-score.sh >/dev/null

# The tiers in the order their cold builds are ready: tests/prebuild.sh builds the Go tools, the
# buildah images, the node and guest root filesystems and the venvs in the background while the
# tiers run (the components at normal priority, the rest at nice 19; each build takes a lock, so a
# tier needing one still in progress waits for it). Tiers that need
# only the components come first; lint after them, for kube-score. Then the guest tier runs
# beside e2e, kind and smoke (test-beside-guests); test-smoke comes last on its side: it stops
# and starts the default cluster as a user would.
TIERS := check-generated test-unit test-integration lint test-hosts test-beside-guests

# test-e2e, test-kind and test-smoke one after the other, with test-guests beside them, its lines
# marked [guests]: under TCG a guest is one busy QEMU thread while the others mostly wait on
# kubelets, containers and builds, so they share two cores. Measured warm: e2e 622 s beside the
# guest tier, the guest tier 779 s beside e2e, where one after the other they take about 1,100 s;
# cold (2026-11-26): e2e 808 s, kind 623 s, guests 1,533 s plus bench-kvm's smoke 180 s.
# Each side runs to its end; either failing fails this.
test-beside-guests: $(DEPS)
	@bash -c '( set -o pipefail; $(MAKE) --no-print-directory test-guests 2>&1 | sed -u "s/^/[guests] /" ) & guests=$$!; \
	  $(MAKE) --no-print-directory test-e2e test-kind test-smoke; others=$$?; \
	  wait $$guests; g=$$?; \
	  echo "test-beside-guests: e2e, kind and smoke exit $$others, guests exit $$g"; \
	  [ $$others -eq 0 ] && [ $$g -eq 0 ]'

# The whole output is kept in make-test.log too; when a tier fails, tests/failure-digest.sh prints
# what failed at the end, where CI's view of the output (its last lines) sees it.
test: ## every test tier, with the cold builds ahead in the background
	@tests/prebuild.sh start
	@trap 'tests/prebuild.sh stop' EXIT INT TERM; \
	  bash -c 'set -o pipefail; $(MAKE) --no-print-directory deps $(TIERS) 2>&1 | tee make-test.log'; status=$$?; \
	  trap - EXIT INT TERM; tests/prebuild.sh stop; \
	  [ $$status -eq 0 ] || tests/failure-digest.sh make-test.log; exit $$status
