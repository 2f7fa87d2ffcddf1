# raftkv: thin GNU make wrapper around CMake.
#
#   make            check packages, build everything, link ./node ./client ... to build/
#   make test       unit tests + simulation (ctest), then the Python harness
#   make cluster    run a local 5-node cluster in the foreground (Ctrl-C stops it)
#   make dashboard  5 nodes behind the fault proxy and a live web page of them (Ctrl-C stops all)
#   make bench      raftkv against etcd on this machine: one table, JSON lines (bench/README.md)
#   make help       list all targets

BUILD_DIR  := build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake
CTEST      ?= ctest
PYTEST     ?= $(if $(wildcard /usr/bin/pytest),/usr/bin/pytest,pytest)
SETUP_ARGS ?= 5 3
PYTHON     ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)

# Keep CMake's recursive make quiet about entering/leaving directories.
MAKEFLAGS += --no-print-directory

# Programs CMake may build (each only once its cmd/<name>/main.cc exists).
PROGRAMS := node client setup launcher proxy lincheck

# Debian packages needed to build and test. The last four are the
# dashboard's: its web server, and the headless browser of its tests.
DEPS := cmake g++ make nlohmann-json3-dev libboost-dev libboost-filesystem-dev \
        libgtest-dev libedit-dev libsodium-dev python3-pytest \
        python3-aiohttp chromium chromium-driver python3-selenium

# make dashboard: HTTP port of the page (DASHBOARD_ARGS: more ./dashboard flags).
DASHBOARD_PORT ?= 8080
DASHBOARD_ARGS ?=

.DEFAULT_GOAL := all
.PHONY: all programs configure links deps test cluster dashboard bench clean distclean help

# all: check deps, configure once (when the cache is missing), build
# everything (programs and tests), link the programs into the repo root.
all: deps configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	@$(MAKE) links

# programs: only what a running cluster needs; quicker than all on a fresh clone.
programs: deps configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS) --target $(PROGRAMS)
	@$(MAKE) links

configure:
	@if [ ! -f $(BUILD_DIR)/CMakeCache.txt ]; then \
	  echo "$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)"; \
	  $(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi

# links: symlink each built program into the repo root; drop stale links.
links:
	@for p in $(PROGRAMS); do \
	  if [ -f $(BUILD_DIR)/$$p ] && [ -x $(BUILD_DIR)/$$p ]; then \
	    ln -sf $(BUILD_DIR)/$$p $$p; \
	  elif [ -L $$p ]; then \
	    rm -f $$p; \
	  fi; \
	done

# deps: verify the Debian packages; as root install the missing ones,
# otherwise print the command to run and fail. Silent when all are present.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: dpkg-query not found (not Debian/Ubuntu?); skipping package check" >&2; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  else \
	    echo "deps: missing packages:$$missing" >&2; \
	    echo "deps: run make as root (it installs them), or install them with:" >&2; \
	    echo "  sudo apt-get install -y$$missing" >&2; \
	    echo "  (no sudo? as root: apt-get install -y$$missing)" >&2; \
	    exit 1; \
	  fi; \
	fi

# test: run ctest, then pytest on harness/ if it has test_*.py files, then
# the dashboard's browser tests (tests/dashboard/, a pytest run of their
# own, so they never count in the harness's score); all always run, and the
# target fails if any failed.
test: all
	@status=0; \
	echo "$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure"; \
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure || status=1; \
	if ls harness/test_*.py >/dev/null 2>&1; then \
	  echo "$(PYTEST) -q harness --reference"; \
	  $(PYTEST) -q harness --reference || status=1; \
	fi; \
	echo "$(PYTEST) -q -p no:cacheprovider tests/dashboard"; \
	$(PYTEST) -q -p no:cacheprovider tests/dashboard || status=1; \
	exit $$status

# cluster: create configs (./setup $(SETUP_ARGS)) unless some exist, then
# replace the shell with the launcher so Ctrl-C reaches it directly.
# PROXY=1 runs the same cluster behind the fault proxy (configs-proxied/),
# so faults/*.scenario can be injected with run_scenario.py --attach.
cluster: programs
	@if ! ls configs/server-*.json >/dev/null 2>&1; then \
	  echo "./setup $(SETUP_ARGS)"; \
	  ./setup $(SETUP_ARGS); \
	fi
ifeq ($(PROXY),1)
	$(PYTHON) harness/proxied_configs.py --force configs configs-proxied
	@./proxy --config configs-proxied/proxy.json & proxy=$$!; \
	  trap 'kill $$proxy 2>/dev/null' EXIT INT TERM; \
	  ./launcher --config-dir configs-proxied; status=$$?; \
	  kill $$proxy 2>/dev/null; wait $$proxy 2>/dev/null; exit $$status
else
	exec ./launcher
endif

# dashboard: ./dashboard starts 5 nodes behind the fault proxy (in a fresh
# directory under /tmp) and serves the page on 127.0.0.1:$(DASHBOARD_PORT);
# exec, so Ctrl-C reaches it directly and it stops everything it started.
# To watch a `make cluster PROXY=1` cluster instead: ./dashboard --attach configs-proxied
dashboard: programs
	exec $(PYTHON) ./dashboard --port $(DASHBOARD_PORT) $(DASHBOARD_ARGS)

# bench: 3 raftkv nodes against 3 etcd members on 127.0.0.1 (bench/kv_bench.py);
# as root it installs etcd-server and python3-etcd3 itself when missing,
# otherwise it says so and measures raftkv alone. BENCH_ARGS passes options.
BENCH_ARGS ?=
BENCH_JSON ?= $(BUILD_DIR)/bench-results.jsonl
bench: programs
	/usr/bin/python3 bench/kv_bench.py --node-bin $(BUILD_DIR)/node --client-bin $(BUILD_DIR)/client \
	  --json $(BENCH_JSON) $(BENCH_ARGS)

# clean: remove the build tree and the program symlinks.
clean:
	rm -rf $(BUILD_DIR)
	@for p in $(PROGRAMS); do if [ -L $$p ]; then rm -f $$p; fi; done

# distclean: clean, plus generated configs and node data.
distclean: clean
	rm -rf configs configs-proxied data

# help: list the targets.
help:
	@echo "Targets:"
	@echo "  all        (default) check deps, configure $(BUILD_DIR)/ if needed, build, link programs"
	@echo "  programs   build only the programs: $(PROGRAMS)"
	@echo "  deps       check Debian packages; install them when root, else print the command"
	@echo "  test       build, then ctest, pytest harness/ (if present) and pytest tests/dashboard/"
	@echo "  cluster    build, create configs with ./setup $(SETUP_ARGS) if none, run ./launcher"
	@echo "             PROXY=1: the same cluster behind ./proxy, for run_scenario.py --attach"
	@echo "  dashboard  build, start 5 nodes behind ./proxy and the web page on 127.0.0.1:$(DASHBOARD_PORT)"
	@echo "  bench      raftkv vs etcd (installed when root): puts, linearizable gets, failover;"
	@echo "             one table, JSON lines in $(BUILD_DIR)/bench-results.jsonl (~10 min)"
	@echo "  clean      remove $(BUILD_DIR)/ and the ./node ./client ... symlinks"
	@echo "  distclean  clean, and remove configs/ and data/"
	@echo "  help       this list"
	@echo "Variables: BUILD_TYPE=$(BUILD_TYPE) JOBS=$(JOBS) PYTEST=$(PYTEST) SETUP_ARGS='$(SETUP_ARGS)'"
