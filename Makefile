# 东西部协作台账 — `make run` serves the app with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
FLASK := $(BIN)/flask
HOST ?= 127.0.0.1
PORT ?= 5000
# Parallel test processes (pytest-xdist); each has its own database.
TEST_WORKERS ?= 2
# PostgreSQL the suite also runs against (CI: PostgreSQL 15, trust auth). SKIP_POSTGRES=1 skips it locally.
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The prefix of the databases the bench smoke run makes on PG_TEST_URL's server (bench_smoke_migrated, _demo and one
# per bench, bench_smoke_<bench>: created or emptied by the run, dropped at its end).
BENCH_DATABASE ?= bench_smoke
# Debian packages: CJK font and HarfBuzz subsetting for PDFs (WeasyPrint); Chromium and poppler for tests.
RUN_PACKAGES := fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
TEST_PACKAGES := $(RUN_PACKAGES) chromium poppler-utils

.PHONY: run test lint format test-sqlite test-postgres bench-smoke system-run system-test db-upgrade demo clean

# The web server and one task consumer together; Ctrl-C (or either one exiting) stops both. A background job of
# a script ignores SIGINT, so the web server is stopped with TERM; the consumer with INT (finishes running tasks).
run: system-run $(VENV)/.installed db-upgrade demo
	@echo "东西部协作台账：http://$(HOST):$(PORT)/  （后台任务消费者已同时启动；Ctrl-C 停止）"
	@stop() { kill -TERM $$web 2>/dev/null; kill -INT $$worker 2>/dev/null; wait $$web $$worker; }; \
	trap 'stop; exit 0' INT TERM; \
	$(FLASK) run --host $(HOST) --port $(PORT) & web=$$!; \
	$(FLASK) tasks consumer -w 2 & worker=$$!; \
	wait -n $$web $$worker; stop

# Each part's time is printed at the end, per engine: the suite's budget is 6 minutes on a quiet 2-core machine, and
# a part that grows shows here first. A part that fails stops the run (as prerequisites would).
# Python writes the bytecode of what it compiles (a shell may say PYTHONDONTWRITEBYTECODE): without it every test
# process, task consumer and bench compiles the app and rewrites the tests' asserts again (~5 s of CPU each).
test: export PYTHONDONTWRITEBYTECODE :=
test: system-test $(VENV)/.installed
	@start=$$SECONDS; status=0; times=""; \
	for part in lint test-sqlite test-postgres bench-smoke; do \
	  t=$$SECONDS; $(MAKE) --no-print-directory $$part || status=$$?; \
	  times="$$times$$(printf '  %-14s %4d' $$part $$((SECONDS - t)))\n"; [ $$status = 0 ] || break; \
	done; \
	printf "== 用时（秒）==\n$$times"; printf '  %-14s %4d（预算 360）\n' 合计 $$((SECONDS - start)); exit $$status

# Installs what is missing when run as root; otherwise says what to install.
system-run system-test: system-%:
	@pkgs="$(if $(filter run,$*),$(RUN_PACKAGES),$(TEST_PACKAGES))"; missing=""; \
	for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "安装系统软件包:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "缺少系统软件包:$$missing —— 请用 root 运行 make，或执行 sudo apt-get install$$missing"; exit 1; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "需要 Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The second step encrypts identity numbers a database from before ID_NUMBER_KEY holds as typed (else a no-op); the
# third builds the monthly people-in-work rows an upgraded database does not have yet (else a no-op).
db-upgrade: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) idnumbers encrypt
	$(FLASK) figures refresh

demo: $(VENV)/.installed
	$(FLASK) geo load
	$(FLASK) demo load

lint: $(VENV)/.installed
	$(BIN)/ruff check registry tests migrations bench
	$(BIN)/ruff format --check registry tests migrations bench

format: $(VENV)/.installed
	$(BIN)/ruff check --fix registry tests migrations bench
	$(BIN)/ruff format registry tests migrations bench

test-sqlite: $(VENV)/.installed
	@echo "== 测试：SQLite =="
	env -u DATABASE_URL -u REGISTRY_TEST_DATABASE_URL $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Tests that use no database fixture (marked no_database by tests/conftest.py) run the same code on any engine:
# test-sqlite has run them.
test-postgres: $(VENV)/.installed
	@if [ "$(SKIP_POSTGRES)" = 1 ]; then echo "== 跳过 PostgreSQL（SKIP_POSTGRES=1）=="; exit 0; fi; \
	echo "== 测试：PostgreSQL ($(PG_TEST_URL)) =="; \
	$(BIN)/python -c 'import sys, sqlalchemy as sa; sa.create_engine(sys.argv[1]).connect().close()' "$(PG_TEST_URL)" \
	  || { echo "无法连接 PostgreSQL：$(PG_TEST_URL)。请启动 PostgreSQL，设置 PG_TEST_URL，或用 SKIP_POSTGRES=1 跳过。"; exit 1; }; \
	env -u DATABASE_URL REGISTRY_TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup \
	  -m "not no_database"

# Every script in bench/ in a small size (bench/smoke.py), on SQLite and PostgreSQL at once: fails when a bench
# raises or prints no FIGURE line; never compares a figure with its target.
bench-smoke: $(VENV)/.installed
	@if [ "$(SKIP_POSTGRES)" = 1 ]; then \
	  echo "== 基准冒烟：SQLite（跳过 PostgreSQL：SKIP_POSTGRES=1）=="; \
	  env -u DATABASE_URL $(BIN)/python -m bench.smoke; \
	else \
	  echo "== 基准冒烟：SQLite 与 PostgreSQL（$(PG_TEST_URL) 服务器上的数据库 $(BENCH_DATABASE)_*）=="; \
	  $(BIN)/python -c 'import sys, sqlalchemy as sa; sa.create_engine(sys.argv[1]).connect().close()' "$(PG_TEST_URL)" \
	    || { echo "无法连接 PostgreSQL：$(PG_TEST_URL)。请启动 PostgreSQL，设置 PG_TEST_URL，或用 SKIP_POSTGRES=1 跳过。"; exit 1; }; \
	  env -u DATABASE_URL $(BIN)/python -m bench.smoke --sqlite --database-url "$(PG_TEST_URL)" \
	    --database-name "$(BENCH_DATABASE)"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
