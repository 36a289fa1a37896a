# One command to run the service, one to run every test. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install run test lint fuzz faults flakes soak bench bench-quick wrk chromium constraints screenshots

# Every package installed is the version constraints.txt pins (the ranges pyproject.toml
# allows are wider), so that each install, CI's included, runs what was tested.
CONSTRAINTS = constraints.txt

$(BIN)/bulkops: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $@

install: $(BIN)/bulkops

run: install
	$(BIN)/bulkops serve

# Much of the suite waits on servers it starts: three test processes at once take far less
# time than one. A module's tests on one backend stay in one process (they share its
# servers); the slow modules are handed out first (tests/conftest.py).
# `make test PYTEST_PARALLEL=` runs in one process.
PYTEST_PARALLEL ?= -n 3 --dist loadgroup --no-loadscope-reorder

test: install chromium
	$(BIN)/ruff check bulkops tests bench
	$(BIN)/ruff format --check bulkops tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# The fuzz suites at length: BULKOPS_FUZZ_EXAMPLES inputs (50,000 by default) per suite and
# backend, new ones each run; `make test` tries a few hundred, the same every time.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_fuzz_http.py tests/test_schemathesis.py

# The fault tests, each fault repeated: SIGKILLed API processes and workers, the database and
# the broker gone and back, a full SQLite database.
FAULT_ROUNDS ?= 5
faults: install
	BULKOPS_TEST_FAULT_ROUNDS=$(FAULT_ROUNDS) $(BIN)/python -m pytest tests/test_faults.py tests/test_worker_kill.py

# The fault and scale-out tests FLAKE_ROUNDS times over, with both cores kept busy by other
# processes; a table of runs and failures per test at the end (any failure: exit 1).
FLAKE_ROUNDS ?= 10
flakes: install
	$(BIN)/python -m tests.flakes --rounds $(FLAKE_ROUNDS) $(PYTEST_PARALLEL)

# A long mixed load against one server (not in CI): errors, latency, memory.
SOAK_SECONDS ?= 1800
SOAK_BACKEND ?= sqlite
soak: $(VENV)/.bench
	$(BIN)/python bench/soak.py --duration $(SOAK_SECONDS) --backend $(SOAK_BACKEND)

# The benchmarks' own extras (matplotlib for the plots), on top of the test install.
$(VENV)/.bench: $(BIN)/bulkops
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test,bench]'
	touch $@

# Chromium, which the browser tests drive (Playwright), from the system's packages (Debian).
CHROMIUM = $(shell command -v chromium)
chromium:
	@$(if $(CHROMIUM),true,apt-get update -qq && apt-get install -y -qq chromium)

# The console's pages as the browser tests see them, for docs/console.md.
screenshots: install chromium
	mkdir -p docs/console
	BULKOPS_SCREENSHOTS=docs/console $(BIN)/python -m pytest tests/test_console_browser.py -q

# wrk, the HTTP load tool, from the system's packages (Debian).
WRK = $(shell command -v wrk)
wrk:
	@$(if $(WRK),true,apt-get update -qq && apt-get install -y -qq wrk)

bench: $(VENV)/.bench wrk
	$(BIN)/python bench/search.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/processing.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/polling.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/keyset.py
	$(BIN)/python bench/facets.py

# What CI runs on every commit: a small data set, only to keep the benchmarks working.
bench-quick: $(VENV)/.bench wrk
	$(BIN)/python bench/search.py --quick
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/processing.py --quick
	$(BIN)/python bench/http_load.py --quick
	$(BIN)/python bench/polling.py --quick --backends sqlite
	$(BIN)/python bench/events.py --quick --backends sqlite
	$(BIN)/python bench/keyset.py --quick
	$(BIN)/python bench/facets.py --quick
	$(BIN)/python bench/soak.py --quick

# constraints.txt anew: the newest releases pyproject.toml's ranges allow (runtime, test and
# bench extras), installed without constraints in a venv of their own. Run the tests after.
FRESH = $(VENV)-constraints
constraints:
	rm -rf $(FRESH)
	$(PYTHON) -m venv $(FRESH)
	$(FRESH)/bin/python -m pip install --quiet --upgrade pip
	$(FRESH)/bin/python -m pip install --quiet -e '.[test,bench]'
	{ $(FRESH)/bin/python -c 'import platform; print("# `make constraints` on Python", platform.python_version())'; \
	  $(FRESH)/bin/python -m pip freeze --exclude-editable; } > $(CONSTRAINTS)
	rm -rf $(FRESH)
