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
WHEEL_PLATFORM := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
WHEEL := dist/duckdb_snapshot-$(EXT_VERSION)-py3-none-$(WHEEL_PLATFORM).whl
DBT_VENV := .venv-dbt

.PHONY: all release debug venv dbt-venv wheel test test-unit test-sql test-e2e stress demo bench bench-s3 install clean

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

# the Python package: the extension binary, duckdb_snapshot.{extension_path,load,connect} and the
# dbt-duckdb plugin duckdb_snapshot.dbt (python/); `pip install dist/*.whl` is all a user needs
wheel: release
	$(PYTHON) python/build_wheel.py --binary $(RELEASE_EXT) --version $(EXT_VERSION) --out dist

# the dbt example's own virtualenv: dbt-core 1.11 (1.12 needs a package that cannot be built
# offline), dbt-duckdb 1.11.1, duckdb 2.0.0; the freshly built wheel is installed by test-e2e
$(DBT_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/pip install --quiet --upgrade pip
	$(DBT_VENV)/bin/pip install --quiet dbt-core==1.11.16 dbt-duckdb==1.11.1 duckdb==2.0.0
	touch $@

dbt-venv: $(DBT_VENV)/.installed

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

test-e2e: release venv wheel dbt-venv
	$(DBT_VENV)/bin/pip install --quiet --force-reinstall --no-deps $(WHEEL)
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) DUCKDB_SHELL=$(DUCKDB_SHELL) \
	SNAPSHOT_WHEEL=$(abspath $(WHEEL)) DBT_VENV=$(abspath $(DBT_VENV)) \
		$(PY) -m pytest -q tests

# long randomized runs of the crash and concurrency tests (make test runs a bounded form)
stress: release venv
	STRESS_ITERATIONS=$${STRESS_ITERATIONS:-60} STRESS_SECONDS=$${STRESS_SECONDS:-20} \
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) DUCKDB_SHELL=$(DUCKDB_SHELL) \
		$(PY) -m pytest -q tests/test_stress.py

demo: release venv wheel
	@bash examples/demo.sh $(DUCKDB_SHELL) $(abspath $(RELEASE_EXT))

# every benchmark (about 90 minutes on a 2-core machine, most of it the 100M-row suite), then
# bench/results.md and bench/results.png; BENCH_SIZES=1000000,10000000 leaves out 100M rows (about 45 minutes)
bench: release venv
	$(PY) -m pip install -q matplotlib==3.9.2
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/metadata.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/read.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/incremental.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/suite.py
	SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/schedule.py
	$(MAKE) bench-s3
	$(PY) bench/report.py

# the S3 server of the off-site benchmark: s3s-fs 0.14.1 (Rust), built once into .tools/ (about 5
# minutes). Stock s3s-fs streams each GET in 4 KB reads (68 MB/s per stream, 188 MB/s at most: slower
# than DuckDB reads the file locally, so the server was the bottleneck); the build raises that buffer to 1 MB.
S3S_FS := .tools/s3s-fs/bin/s3s-fs
$(S3S_FS):
	rm -rf .tools/src/s3s-fs-0.14.1 && mkdir -p .tools/src
	curl -sSfL https://static.crates.io/crates/s3s-fs/s3s-fs-0.14.1.crate | tar xz -C .tools/src
	sed -i 's/ReaderStream::with_capacity(\(file\|src_file\), 4096)/ReaderStream::with_capacity(\1, 1 << 20)/' .tools/src/s3s-fs-0.14.1/src/s3.rs
	test $$(grep -c 'with_capacity(.*file, 1 << 20)' .tools/src/s3s-fs-0.14.1/src/s3.rs) = 2
	cargo install --path .tools/src/s3s-fs-0.14.1 --features binary --locked --root .tools/s3s-fs

bench-s3: release venv $(S3S_FS)
	S3S_FS=$(abspath $(S3S_FS)) SNAPSHOT_EXTENSION=$(abspath $(RELEASE_EXT)) $(PY) bench/s3.py

# copies the extension where `LOAD snapshot` finds it, for both pinned DuckDB versions
install: release
	for v in v$(DUCKDB_CLI_VERSION) v$(DUCKDB_VERSION); do \
		mkdir -p $(HOME)/.duckdb/extensions/$$v/$(PLATFORM) && \
		cp $(RELEASE_EXT) $(HOME)/.duckdb/extensions/$$v/$(PLATFORM)/; \
	done

clean:
	rm -rf build target dist $(VENV) $(DBT_VENV)
