# Set-up is two commands: `make install` then `make test-all` (README); `make test` is the fast set.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers: the suite is mostly independent end-to-end runs.
# Extra arguments for `make bench`, e.g. BENCH_ARGS="--device cuda --fid-weights PATH"
WORKERS ?= 2

.PHONY: install browser test test-all bench gpu-bundle clean

install: $(VENV)/.installed browser

# Headless Chromium renders report.html in the report's screenshot test; Debian's package, installed when missing
# (sudo when not root).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

# Re-installs when the dependency list changes. torchvision pulls its matching torch (CUDA build, runs on CPU too).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	touch $@

# The fast set: everything but the checks marked slow (under 3 minutes on 2 cores).
test: install
	$(BIN)/pytest -n $(WORKERS) -m "not slow" tests

# The whole suite, slow end-to-end checks (longer training runs, real sweeps, FID) included: what CI runs.
test-all: install
	$(BIN)/pytest -n $(WORKERS) tests

bench: install
	$(BIN)/python -m lipbench.bench $(BENCH_ARGS)

# .gpu/: what a bare GPU machine needs beside its PyTorch (README "Running on a GPU").
gpu-bundle: install
	PYTHON=$(BIN)/python scripts/gpu_bundle.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
