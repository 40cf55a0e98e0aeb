# SSEAUN Exchange. `make run` and `make test` work on a fresh machine with only Python and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: run test browser install lint typecheck proto-lint proto-breaking proto-check proto vectors bench clean requirements requirements-check

run: install
	$(BIN)/sseaun --help

test: install browser lint typecheck proto-lint proto-breaking proto-check requirements-check
	$(BIN)/pytest

# Headless Chromium, for the test that renders the conformance report (tests/test_conformance_html.py).
# Debian's package; nothing to do when it is already installed.
browser:
	@if command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium; then :; else \
		echo "installing Chromium (Debian package chromium) with apt-get"; \
		if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

install: $(VENV)/.deps
	@# Strict editable installs link the files present at install time: refresh when the set of
	@# package files changes, so a new module is importable without a manual reinstall.
	@find sdk node conformance proto/sseaun -type f \( -name '*.py' -o -name '*.pyi' -o -name py.typed -o -name '*.json' \) | sort > $(VENV)/.files.new
	@if ! cmp -s $(VENV)/.files.new $(VENV)/.files; then \
		echo "installing sseaun (editable)"; \
		$(PY) -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict && \
		mv $(VENV)/.files.new $(VENV)/.files; \
	else rm -f $(VENV)/.files.new; fi

$(VENV)/.deps: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=strict
	@rm -f $(VENV)/.files
	@touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sdk node conformance tests benchmarks proto/generate.py

typecheck: install
	$(BIN)/mypy sdk node conformance tests benchmarks

# The conformance suite's list of spec requirements (conformance/requirements.json), from docs/spec.
requirements: install
	$(PY) -m sseaun.conformance._requirements

requirements-check: install
	$(PY) -m sseaun.conformance._requirements --check

proto-lint: install
	cd proto && ../$(BIN)/buf lint

# Compare with the image of the last released contract (not with main itself).
proto-breaking: install
	cd proto && ../$(BIN)/buf breaking --against released/sseaun-v1.binpb

proto-check: install
	$(PY) proto/generate.py --check

proto: install
	$(PY) proto/generate.py

# Cut a release of the contract: the image later changes are checked against.
proto-release: install
	cd proto && ../$(BIN)/buf build -o released/sseaun-v1.binpb

vectors: install
	$(PY) conformance/vectors/generate.py

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache
