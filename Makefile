# picmatch: `make demo` sets everything up and runs a search; `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint typecheck unit browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python scripts/build_demo.py demo/images
	$(BIN)/picmatch index demo/images --library demo/library
	$(BIN)/picmatch search demo/queries/chelsea-edited.jpg --library demo/library --top 5

# Headless Chromium for the web page test (Debian packages; needs root, as on CI).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

test: install browser lint typecheck
	scripts/isolated.sh $(BIN)/pytest -q

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
