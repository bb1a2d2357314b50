# Two targets do all set-up: `make demo` and `make test` (see README "Quick start").
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint soak fuzz bench fleet-test clean

# The virtual environment, with archiver installed editable and the test tools.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/archiver demo

# The checks first (a few seconds), then the suite. Tests never touch a real keyring: the
# fail backend makes any stray use an error. The suite runs in 4 workers, even on 2 cores:
# it is CPU-bound (`archiver` subprocesses and SQLite), and on a machine busy with other work
# 4 get a larger share of the cores than 2; TEST_WORKERS=0 runs it in one process. Tests
# sharing a costly module fixture carry one xdist_group mark and run in one worker
# (loadgroup), which builds it once. The 15 slowest tests are listed at the end.
TEST_WORKERS ?= 4
test: lint
	PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring $(BIN)/python -m pytest -n $(TEST_WORKERS) \
		--dist loadgroup --durations=15

# ruff (pycodestyle, pyflakes, bugbear, import order) and mypy; both configured in pyproject.toml.
lint: $(VENV)/.installed
	$(BIN)/ruff check
	$(BIN)/mypy

# The random-SIGKILL soaks on top of the suite's deterministic crash-point walk.
soak: $(VENV)/.installed
	ARCHIVER_SOAK=1 PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring $(BIN)/python -m pytest -m soak

# The importers' fuzz test, long: FUZZ_EXAMPLES cases per importer from a random seed
# (printed; `make fuzz FUZZ_SEED=N` runs the same cases again).
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.installed
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz seed: $$seed (again: make fuzz FUZZ_SEED=$$seed)"; \
	ARCHIVER_FUZZ=long ARCHIVER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring \
	$(BIN)/python -m pytest tests/test_import_fuzz.py -p no:cacheprovider --timeout=0 --hypothesis-seed=$$seed \
	|| { echo "fuzz seed: $$seed (again: make fuzz FUZZ_SEED=$$seed)"; exit 1; }

# The fleet's long tests (docs/fleet.md): a night of 200 simulated accounts over 3 workers
# with one killed, and the like, each on its own PostgreSQL started by the tests (Debian's
# postgresql package). `make test` runs their short versions. -rA shows what passed tests
# printed: their figures (docs/fleet.md, Tests).
fleet-test: $(VENV)/.installed
	ARCHIVER_FLEET_LONG=1 PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring $(BIN)/python -m pytest tests/test_fleet_*.py \
		-p no:cacheprovider --durations=10 -rA

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/followers_snapshot.py

clean:
	rm -rf $(VENV) demo-archive build src/*.egg-info
