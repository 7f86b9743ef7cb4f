# Developer tasks. `make simulate` and `make test` are the README's two commands.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/voiceagent: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

.PHONY: install simulate test lint types bench serve
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
