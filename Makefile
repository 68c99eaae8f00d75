# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit bench bench-smoke kafka-start kafka-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# The benchmarks' peers (Bytewax, Feast) get a virtualenv of their own: their pins must not
# move what the tests run on. Quix Streams gets one too (bench/kafka_bench.py makes it).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/streamsense demo apps/fraud

# The recommendations app (issue #16): a user's list before and after a burst in one genre.
.PHONY: demo-recs
demo-recs: $(STAMP)
	$(VENV)/bin/streamsense demo apps/recs

# Everything: lint, strict typing, unit, contract, integration (real Kafka) and e2e tests,
# and beside them (another process, its own Kafka and Redis) every benchmark and peer at
# tiny sizes: a check that they still install and run, with no thresholds. The tests run as
# two pytest processes side by side: those that start brokers of their own (the chaos
# suite, the month on Kafka) and the rest, which share the session's Kafka and Redis. Much
# of their time is waiting (session timeouts, kills, restarts), so two cores carry both.
OWN_BROKER_TESTS := tests/chaos tests/integration/test_kafka_month_replay.py
test: $(STAMP) lint typecheck chromium
	@$(MAKE) --no-print-directory bench-smoke > .bench-smoke.log 2>&1 & smoke=$$!; \
	$(PY) -m pytest -p no:cacheprovider $(OWN_BROKER_TESTS) > .tests-own-brokers.log 2>&1 & \
	own=$$!; \
	$(PY) -m pytest $(addprefix --ignore=,$(OWN_BROKER_TESTS)); tests=$$?; \
	wait $$own; owned=$$?; \
	echo "== the tests with brokers of their own ($(OWN_BROKER_TESTS)):"; \
	cat .tests-own-brokers.log; \
	wait $$smoke; bench=$$?; \
	if [ $$bench -ne 0 ]; then tail -60 .bench-smoke.log; fi; \
	echo "bench smoke: exit $$bench (log: .bench-smoke.log); tests: exit $$tests;" \
		"tests with their own brokers: exit $$owned (log: .tests-own-brokers.log)"; \
	test $$tests -eq 0 -a $$owned -eq 0 -a $$bench -eq 0

# The UI's browser tests drive Debian's Chromium (tests/e2e/test_ui_browser.py): installed
# from the distribution's packages when missing (as root, or with sudo), never downloaded.
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests apps bench
	$(VENV)/bin/ruff format --check src tests apps bench

# The IoT app (issue #15): a simulated fleet through the pipeline, and a NAB score table.
.PHONY: demo-iot
demo-iot: $(STAMP)
	$(VENV)/bin/streamsense demo apps/iot --state-dir .demo-iot

# The files of pyproject's [tool.mypy]: the package and the apps, each app checked against
# the application contract.
typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/contract -m "not kafka"

# Every benchmark at full size with its peers (hours), raw results kept in bench/results/,
# then BENCHMARKS.md's generated tables rewritten from the newest results.
bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run_all.py
	$(BENCH_VENV)/bin/python bench/results.py --update BENCHMARKS.md
	$(BENCH_VENV)/bin/python bench/plots.py

# The smoke run's results go to /tmp (they are not figures); its tables and plots are drawn
# there too, so a change that breaks them fails here.
SMOKE_RESULTS := /tmp/streamsense-bench-smoke
bench-smoke: $(BENCH_STAMP)
	rm -rf $(SMOKE_RESULTS)
	$(BENCH_VENV)/bin/python bench/run_all.py --smoke
	$(BENCH_VENV)/bin/python bench/results.py $(SMOKE_RESULTS)/*.json > /dev/null
	$(BENCH_VENV)/bin/python bench/plots.py --results $(SMOKE_RESULTS) --out $(SMOKE_RESULTS)/plots

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

clean:
	rm -rf $(VENV) $(BENCH_VENV) .bench-smoke.log .demo .streamsense .mypy_cache .ruff_cache .pytest_cache
