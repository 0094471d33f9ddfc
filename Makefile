# Sandfire. `make help` lists the targets.

SHELL := /bin/bash
CARGO ?= cargo
EXAMPLES := hello flaky spin hog panic sleep report noop snooze files flood ticker fetch webhook leaky
WASM_DIR := target/wasm32-wasip2/wasm
# Throwaway PostgreSQL clusters (used only when DATABASE_URL is unset).
RUN_PG_DIR := target/pg-run
RUN_PG_PORT := 54329
TEST_PG_DIR := target/pg-test
TEST_PG_PORT := 54330
BENCH_PG_DIR := target/pg-bench
BENCH_PG_PORT := 54331

# Jobs in other languages (examples-langs/), built with pinned toolchains installed under
# target/langs/ (a Python venv and an npm tree): see docs/guest-languages.md.
LANGS_DIR := target/langs
COMPONENTIZE_PY_VERSION := 0.25.1
PY_VENV := $(LANGS_DIR)/py
PY_STAMP := $(PY_VENV)/.componentize-py-$(COMPONENTIZE_PY_VERSION)
JS_TOOLS := $(LANGS_DIR)/js
JS_STAMP := $(JS_TOOLS)/node_modules/.package-lock.json
WIT_FILES := $(wildcard wit/*.wit wit/deps/*.wit)
LANG_EXAMPLES := $(WASM_DIR)/hello-py.wasm $(WASM_DIR)/hello-js.wasm $(WASM_DIR)/fetch-js.wasm

# The API fuzz run (make fuzz): schemathesis, pinned, in a venv under target/fuzz/.
SCHEMATHESIS_VERSION := 4.32.5
FUZZ_VENV := target/fuzz/venv
FUZZ_STAMP := $(FUZZ_VENV)/.schemathesis-$(SCHEMATHESIS_VERSION)
FUZZ_PG_DIR := target/pg-fuzz
# Outside the ephemeral port range (32768-60999): it starts after the whole test suite, when
# a browser or a client socket from the tests may still hold a port in that range.
FUZZ_PG_PORT := 25432

.PHONY: help run test lint bench bench-langs chaos fuzz examples examples-langs wasm-target build fmt clean-db

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

examples: wasm-target ## Build the example jobs to target/wasm32-wasip2/wasm/<name>.wasm
	$(CARGO) build --profile wasm --target wasm32-wasip2 $(addprefix -p ,$(EXAMPLES))

examples-langs: $(LANG_EXAMPLES) ## Build the Python and JavaScript example jobs (installs componentize-py/-js, pinned)

$(PY_STAMP):
	@command -v python3 >/dev/null || { echo "python3 (3.11 or newer) is needed for componentize-py" >&2; exit 1; }
	rm -rf $(PY_VENV)
	python3 -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)
	touch $@

$(JS_STAMP): examples-langs/js/package.json examples-langs/js/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20 or newer (with npm) is needed for componentize-js" >&2; exit 1; }
	mkdir -p $(JS_TOOLS)
	cp examples-langs/js/package.json examples-langs/js/package-lock.json $(JS_TOOLS)/
	cd $(JS_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Run from $(JS_TOOLS) so that Node resolves the pinned packages installed there.
$(JS_TOOLS)/componentize.mjs: examples-langs/js/componentize.mjs $(JS_STAMP)
	cp $< $@

$(WASM_DIR)/hello-py.wasm: examples-langs/hello-py/app.py $(WIT_FILES) $(PY_STAMP)
	mkdir -p $(WASM_DIR)
	$(PY_VENV)/bin/componentize-py -d wit -w sandfire:job/job componentize \
	  -p examples-langs/hello-py app -o $@.tmp >/dev/null
	mv $@.tmp $@

$(WASM_DIR)/hello-js.wasm: examples-langs/hello-js/hello.js $(WIT_FILES) $(JS_TOOLS)/componentize.mjs
	mkdir -p $(WASM_DIR)
	cd $(JS_TOOLS) && node componentize.mjs $(CURDIR)/$< $(CURDIR)/wit job $(CURDIR)/$@

$(WASM_DIR)/fetch-js.wasm: examples-langs/fetch-js/fetch.js $(WIT_FILES) $(JS_TOOLS)/componentize.mjs
	mkdir -p $(WASM_DIR)
	cd $(JS_TOOLS) && node componentize.mjs $(CURDIR)/$< $(CURDIR)/wit job-http $(CURDIR)/$@ --http

build: ## Build the runner (release)
	$(CARGO) build --release -p sandfire

run: examples build ## Start a runner with a local database and the example jobs uploaded
	scripts/with-pg.sh $(RUN_PG_DIR) $(RUN_PG_PORT) durable -- scripts/dev-run.sh

# A hung test fails the run at TEST_TIMEOUT instead of holding CI until its own limit.
TEST_TIMEOUT ?= 45m
test: examples examples-langs ## Run every test against a throwaway PostgreSQL
	scripts/with-pg.sh $(TEST_PG_DIR) $(TEST_PG_PORT) fast -- \
	  timeout --kill-after=30s $(TEST_TIMEOUT) $(CARGO) test -p sandfire -p sandfire-guest -p sandfire-guest-macro -p report -p ticker

$(FUZZ_STAMP):
	@command -v python3 >/dev/null || { echo "python3 (3.10 or newer) is needed for schemathesis" >&2; exit 1; }
	rm -rf $(FUZZ_VENV)
	python3 -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	touch $@

# Knobs: FUZZ_MAX_EXAMPLES (per operation), FUZZ_SEED, FUZZ_WORKERS (see scripts/fuzz.sh).
fuzz: examples $(FUZZ_STAMP) ## Fuzz the HTTP API from its OpenAPI document (schemathesis) against a live runner
	$(CARGO) build -p sandfire --bin sandfire
	scripts/with-pg.sh $(FUZZ_PG_DIR) $(FUZZ_PG_PORT) fast -- \
	  scripts/fuzz.sh $(FUZZ_VENV)/bin/schemathesis target/debug/sandfire

lint: ## rustfmt check + clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p sandfire -p sandfire-guest -p sandfire-guest-macro --all-targets -- -D warnings

# Knobs: BENCH_QUICK=1 (small sizes only), BENCH_RUNS_SMALL, BENCH_RUNS_LARGE and the others
# listed at the top of runner/benches/queue.rs and runner/benches/scale.rs.
bench: examples build ## Throughput and enqueue over HTTP vs a raw-SQL floor, scale figures, lateness, cluster (durable commits)
	scripts/with-pg.sh $(BENCH_PG_DIR) $(BENCH_PG_PORT) durable -- \
	  $(CARGO) bench -p sandfire --bench sandbox --bench queue --bench scale --bench lateness --bench cluster

bench-langs: examples examples-langs build ## What a job costs per language (upload, kept artifact, first and warm runs): docs/guest-languages.md
	scripts/with-pg.sh $(BENCH_PG_DIR) $(BENCH_PG_PORT) fast -- $(CARGO) bench -p sandfire --bench langs

# Knobs: CHAOS_SECONDS, CHAOS_RUNS, CHAOS_KILL_EVERY_MS, CHAOS_DB_DOWN_MS, CHAOS_FREEZE_MS,
# CHAOS_KEEP (see tests/chaos.rs).
CHAOS_SECONDS ?= 60
CHAOS_RUNS ?= 5000
chaos: examples ## Chaos test: SIGKILL runner processes for 60 s, crash PostgreSQL once; prints the figures
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_RUNS=$(CHAOS_RUNS) \
	  $(CARGO) test -p sandfire --test integration chaos:: -- --nocapture --test-threads=1

fmt: ## Format the code
	$(CARGO) fmt --all

clean-db: ## Stop every throwaway database cluster under target/, then delete it
	scripts/pg.sh clean target
