# Kaizen — two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   # venv + pins + local Airflow, demo data, daily_review through Airflow
#   make test   # venv + pins + local Airflow, the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__LOGGING__COLORED_CONSOLE_LOG := False
export PYTHONPATH := $(CURDIR)/plugins

.PHONY: demo test lint venv airflow-db freeze clean snapshot-check replay ui

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# a stamp, not airflow.db itself: a migration that failed half-way is redone next time
$(AIRFLOW_HOME)/.migrated: | $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow pools import plugins/kaizen/pools.json >> $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	@touch $@

airflow-db: $(AIRFLOW_HOME)/.migrated

demo: $(STAMP) airflow-db
	$(BIN)/python -m kaizen demo

# the local Airflow UI over the demo (prepared first if its warehouse is empty): api-server,
# scheduler, dag-processor, triggerer; prints the URL, user and password; Ctrl-C stops it all
UI_PORT ?= 8080
ui: $(STAMP) airflow-db
	$(BIN)/python -m kaizen ui --port $(UI_PORT)

# the tests that are not live run on TEST_WORKERS pytest-xdist workers (each with its own
# copy of the Airflow metadata DB, see tests/conftest.py; 0: in one process), then the live
# test alone (LIVE=0 skips it); PYTEST_ARGS go to both (a selection the live step does not
# match is fine: pytest's "no tests collected", exit code 5, is not a failure there)
TEST_WORKERS ?= 2
LIVE ?= 1
test: $(STAMP) airflow-db
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not live" $(PYTEST_ARGS)
ifeq ($(LIVE),1)
	$(BIN)/python -m pytest -m live $(PYTEST_ARGS) || [ $$? -eq 5 ]
endif

# kpi_values of the benchmark's year (12 months, 2,000 trades/day) against the committed
# snapshot, on SQLite and PostgreSQL (~30 s each; the demo's is checked by make test)
SNAPSHOT_PG ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
snapshot-check: $(STAMP)
	$(BIN)/python tests/kpi_snapshot.py build --end 2026-11-27 --months 12 --trades-per-day 2000 \
		--out tests/data/kpi_values_year.csv.gz --check
	$(BIN)/python tests/kpi_snapshot.py build --end 2026-11-27 --months 12 --trades-per-day 2000 \
		--out tests/data/kpi_values_year.csv.gz --check --url $(SNAPSHOT_PG) --fresh-database

# scheduled operation replayed (issue 13): history to day X, then every scheduled run of the four
# review DAGs in time order through Airflow (dag.test) for 3.5 weeks with a month and quarter end,
# compared with a one-shot rebuild; exits 1 on a failed run or any kpi_values mismatch (~2 min).
# Other windows: make replay REPLAY_ARGS="--history-to 2026-10-16 --days 24 --months 3 --seed 42"
REPLAY_ARGS ?=
replay: $(STAMP) airflow-db
	$(BIN)/python bench/replay.py $(REPLAY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# requirements.txt from the venv, in two sections: the production image's, then test tools
freeze: $(STAMP)
	$(BIN)/python .ci/freeze.py requirements.txt

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) data out
