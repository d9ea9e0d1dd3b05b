# snapshot DuckDB extension. `make` builds build/release/snapshot.duckdb_extension;
# `make test` runs every test; `make demo` builds and runs a short session in the DuckDB shell.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DUCKDB_VERSION := 2.0.0
DUCKDB_CLI_VERSION := 1.5.6
EXT_VERSION := $(shell grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
CAPI_VERSION := v1.5.6
PLATFORM := linux_amd64
RELEASE_EXT := build/release/snapshot.duckdb_extension
DEBUG_EXT := build/debug/snapshot.duckdb_extension

.PHONY: all release debug venv test test-unit test-sql test-e2e stress demo bench bench-s3 install clean

all: release

release:
	cargo build --release --lib
	@mkdir -p build/release
	$(PYTHON) extension-ci-tools/append_footer.py target/release/libsnapshot.so $(RELEASE_EXT) \
		--extension-version v$(EXT_VERSION) --capi-version $(CAPI_VERSION) --platform $(PLATFORM)
	@echo "built $(RELEASE_EXT)"

debug:
	cargo build --lib
	@mkdir -p build/debug
	$(PYTHON) extension-ci-tools/append_footer.py target/debug/libsnapshot.so $(DEBUG_EXT) \
		--extension-version v$(EXT_VERSION) --capi-version $(CAPI_VERSION) --platform $(PLATFORM)

$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet duckdb==$(DUCKDB_VERSION) duckdb-cli==$(DUCKDB_CLI_VERSION) pytest==8.3.5 \
		pytz==2025.2 numpy==2.2.6 pandas==2.2.3 pyarrow==21.0.0 \
		'moto[server]==5.2.5' boto3==1.44.8 botocore==1.44.8
	touch $@

venv: $(VENV)/.installed

# pytz, numpy and pandas: what Python needs to fetch TIMESTAMPTZ columns and .fetchdf() results;
# pyarrow: docs/read_snapshot.py, the format's reader without DuckDB
# moto[server], boto3, botocore: tests/s3server.py, a local S3-compatible server (moto in a
# subprocess) and a fault-injecting proxy for the S3 tests

# the real shell binary shipped inside the duckdb-cli wheel
DUCKDB_SHELL = $(shell $(PY) -c 'import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb"))')

test: release venv test-unit test-sql test-e2e

test-unit: venv
	cargo test --lib

test-sql: release venv
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) DUCKDB_SHELL=$(DUCKDB_SHELL) \
		$(PY) test/run_sql_tests.py test/sql

test-e2e: release venv
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) DUCKDB_SHELL=$(DUCKDB_SHELL) \
		$(PY) -m pytest -q tests

# long randomized runs of the crash and concurrency tests (make test runs a bounded form)
stress: release venv
	STRESS_ITERATIONS=$${STRESS_ITERATIONS:-60} STRESS_SECONDS=$${STRESS_SECONDS:-20} \
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) DUCKDB_SHELL=$(DUCKDB_SHELL) \
		$(PY) -m pytest -q tests/test_stress.py

demo: release venv
	@bash examples/demo.sh $(DUCKDB_SHELL) $(abspath $(RELEASE_EXT))

# every benchmark (about 90 minutes on a 2-core machine, most of it the 100M-row suite), then
# bench/results.md and bench/results.png; BENCH_SIZES=1000000,10000000 leaves out 100M rows (about 45 minutes)
bench: release venv
	$(PY) -m pip install -q matplotlib==3.9.2
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/metadata.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/read.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/incremental.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/suite.py
	$(MAKE) bench-s3
	$(PY) bench/report.py

# the S3 server of the off-site benchmark: s3s-fs (Rust), built once into .tools/ (about 5 minutes)
S3S_FS := .tools/bin/s3s-fs
$(S3S_FS):
	cargo install s3s-fs --version 0.14.1 --features binary --locked --root .tools

# off-site repositories against a local S3 server (about 10 minutes), then bench/results-s3.md
bench-s3: release venv $(S3S_FS)
	S3S_FS=$(abspath $(S3S_FS)) SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/s3.py

# copies the extension where `LOAD snapshot` finds it, for both pinned DuckDB versions
install: release
	for v in v$(DUCKDB_CLI_VERSION) v$(DUCKDB_VERSION); do \
		mkdir -p $(HOME)/.duckdb/extensions/$$v/$(PLATFORM) && \
		cp $(RELEASE_EXT) $(HOME)/.duckdb/extensions/$$v/$(PLATFORM)/; \
	done

clean:
	rm -rf build target $(VENV)
