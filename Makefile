# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit bench kafka-start kafka-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/streamsense demo apps/fraud

# The recommendations app (issue #16): a user's list before and after a burst in one genre.
.PHONY: demo-recs
demo-recs: $(STAMP)
	$(VENV)/bin/streamsense demo apps/recs

# Everything: lint, strict typing, unit, contract, integration (real Kafka) and e2e tests.
test: $(STAMP) lint typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests apps bench
	$(VENV)/bin/ruff format --check src tests apps bench

# The files of pyproject's [tool.mypy]: the package and the apps, each app checked against
# the application contract.
typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/contract -m "not kafka"

bench: $(STAMP)
	taskset -c 0 $(PY) bench/broker_bench.py

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

clean:
	rm -rf $(VENV) .demo .streamsense .mypy_cache .ruff_cache .pytest_cache
