# sf_platform: `make demo` and `make test` are the two commands; see README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.py constraints.txt | md5sum | cut -c1-12)

.PHONY: install install-deploy demo test test-deploy ui bench stack-up stack-down lint screenshot

$(STAMP): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/sf-platform demo

test: install
	$(BIN)/python -m pytest -m "not deploy"

# The production deployment on loopback (README "Deploying"): needs the machine's PostgreSQL and RabbitMQ.
install-deploy: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,deploy]'

test-deploy: install-deploy
	$(BIN)/python -m pytest sf_platform_tests/deploy

ui: install
	$(BIN)/sf-platform ui

# docs/asset-graph.png, the README's picture of the asset graph, from the demo (Debian's chromium).
screenshot: demo
	$(BIN)/python docs/screenshot.py

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@status=0; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

stack-up: install
	$(BIN)/sf-platform stack up

stack-down: install
	$(BIN)/sf-platform stack down

lint: install
	$(BIN)/ruff check sf_platform sf_platform_tests bench
