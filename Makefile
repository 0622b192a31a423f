# Everything a developer or CI runs; `make test` and `make demo` work on a fresh clone.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BROKER := $(BIN)/python kafka/local_broker.py

.PHONY: install check test unit integration kafka-jars kafka-up kafka-down demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

check: install
	$(BIN)/ruff check streamer tests bench kafka
	$(BIN)/ruff format --check streamer tests bench kafka
	$(BIN)/mypy streamer

kafka-jars: install
	$(BROKER) fetch

test: install check kafka-jars
	$(BIN)/pytest tests

unit: install
	$(BIN)/pytest tests/unit

integration: install kafka-jars
	$(BIN)/pytest tests/integration

kafka-up: install
	$(BROKER) up

kafka-down: install
	$(BROKER) down

# Starts the local broker unless one runs, and stops (and wipes) it afterwards if it started it.
demo: install kafka-jars
	@if $(BROKER) status >/dev/null; then started=0; else $(BROKER) up && started=1; fi; \
	$(BIN)/streamer demo; rc=$$?; \
	if [ $$started = 1 ]; then $(BROKER) down --wipe; fi; exit $$rc

bench: install kafka-jars
	$(BIN)/python bench/throughput.py

clean: kafka-down
	rm -rf $(VENV) kafka/.cache .demo
