# Developer tasks. `make simulate` and `make test` are the README's two commands.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Every install comes from the lock (hashes of every transitive dependency, Python 3.11 on Linux
# x86_64); the project itself is installed on top without resolving anything.
LOCK := requirements/lock.txt
RUNTIME := requirements/runtime.txt
LOWEST := requirements/lowest.txt
COMPILE = $(BIN)/uv pip compile pyproject.toml requirements/build.in --generate-hashes \
	--python-version 3.11 --python-platform x86_64-unknown-linux-gnu --quiet

$(BIN)/voiceagent: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

.PHONY: install simulate test lint types bench serve lock upgrade-deps lowest
install: $(BIN)/voiceagent

simulate: install          ## offline rehearsal: fake Inworld + simulated Twilio, no accounts
	$(BIN)/voiceagent simulate

test: install              ## lint, types and the test suite
	$(BIN)/ruff check voiceagent tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check voiceagent tests benchmarks scripts
	$(BIN)/ruff format --check voiceagent tests benchmarks scripts

types: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/realtime_load.py
	$(BIN)/python benchmarks/relay_latency.py
	$(BIN)/python benchmarks/records_throughput.py
	$(BIN)/python benchmarks/report_render.py

serve: install
	$(BIN)/voiceagent serve

# $(LOCK): everything `make install` puts in .venv (dev tools too); $(RUNTIME): the same pins
# without the dev tools (the Dockerfile); $(LOWEST): every direct dependency at the lower bound
# of pyproject.toml (`make lowest`, CI), always resolved afresh (an old pin above a lowered floor
# would otherwise stay).
lock: install              ## re-lock after editing pyproject.toml (keeps every pin it can)
	$(COMPILE) --extra dev -o $(LOCK)
	$(COMPILE) -c $(LOCK) -o $(RUNTIME)
	$(COMPILE) --extra dev --resolution lowest-direct --upgrade -o $(LOWEST)

upgrade-deps: install      ## move every pin to the newest release pyproject.toml allows
	$(COMPILE) --extra dev --upgrade -o $(LOCK)
	$(COMPILE) -c $(LOCK) --upgrade -o $(RUNTIME)
	$(COMPILE) --extra dev --resolution lowest-direct --upgrade -o $(LOWEST)

lowest: install            ## the lower bounds of pyproject.toml, installed and tested (CI runs it)
	test -x .venv-lowest/bin/python || $(PY) -m venv .venv-lowest
	.venv-lowest/bin/pip install -q --require-hashes -r $(LOWEST)
	.venv-lowest/bin/pip install -q --no-deps --no-build-isolation -e .
	.venv-lowest/bin/pytest -p no:cacheprovider tests/unit tests/e2e tests/modes
