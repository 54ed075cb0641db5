# Two commands do all the set-up on a fresh machine:
#   make run    start the service on the embedded default (in-process bus + chDB)
#   make test   run the whole suite against a real local Kafka broker and chDB
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= deploy/clicktrail.example.yaml
KAFKA_PORT ?= 19092
PYTEST_ARGS ?=

.PHONY: venv run test unit lint format schemas bench kafka-up kafka-down clean help browser

help:
	@echo "make run      start clicktrail on http://127.0.0.1:8080 (embedded runtime, chDB store in ./var)"
	@echo "make test     lint + the whole test suite (starts and stops a local Kafka broker)"
	@echo "make unit     tests that need no broker"
	@echo "make lint     ruff + mypy"
	@echo "make schemas  regenerate schemas/events from the pydantic models"
	@echo "make bench    the speed table (edge, pipeline, sink, Faust worker, latency)"
	@echo "make venv     create/update .venv (idempotent)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/clicktrail run --dev --config $(CONFIG)

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

schemas: venv
	$(BIN)/clicktrail schemas --out schemas/events

unit: venv
	$(BIN)/pytest -m "not kafka" $(PYTEST_ARGS)

# The dashboard's browser test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	( if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the dashboard's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will be skipped"; \
	else echo "no chromium (apt-get install chromium): the browser test will be skipped"; fi )

# Uses KAFKA_BOOTSTRAP if it is set, else starts deploy/kafka's broker and stops it afterwards.
test: lint browser
	@if [ -n "$$KAFKA_BOOTSTRAP" ]; then \
		$(BIN)/pytest $(PYTEST_ARGS); \
	else \
		trap 'KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/stop.sh' EXIT; \
		KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/start.sh && \
		KAFKA_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/pytest $(PYTEST_ARGS); \
	fi

# The speed table of README.md: every figure of the brief, with a local broker for the Faust row.
bench: venv
	@trap 'KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/stop.sh' EXIT; \
	KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/start.sh && \
	$(BIN)/clicktrail --log-level warning bench --broker 127.0.0.1:$(KAFKA_PORT) --json var/bench.json

kafka-up:
	KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/start.sh

kafka-down:
	KAFKA_PORT=$(KAFKA_PORT) bash deploy/kafka/stop.sh

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
