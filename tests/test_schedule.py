"""Scheduled snapshots (issue 16): snapshot_schedule / snapshot_schedules / snapshot_unschedule,
the background scheduler, due times driven by a faked wall clock (libfaketime, one clock file
per test that the test moves), catch-up at LOAD, per-schedule retention, two processes sharing
one schedule, failures recorded and retried, and a database that still closes and a process
that still exits promptly while a schedule exists. Python 2.0 and the 1.5.6 shell."""
import json
import os
import re
import subprocess
import sys
import time

import duckdb
import pytest

from conftest import EXT, connect, rows, shell_binary

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.fixture(autouse=True)
def _faketime_installed():
    assert os.path.exists(LIBFAKETIME), "these tests drive time with libfaketime: apt-get install faketime (.ci/run does)"

# a child process that runs the SQL it is sent (one JSON line each) and answers in JSON; it
# never sleeps itself (a faked clock breaks time.sleep), the test does the waiting
CHILD = r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro", config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{sys.argv[3]}'")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd.get("close"):
        con.close()
        print(json.dumps({"closed": True}), flush=True)
        continue
    try:
        got = con.execute(cmd["sql"]).fetchall()
        out = {"rows": [[v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for v in r] for r in got]}
    except Exception as e:
        out = {"error": str(e)}
    print(json.dumps(out), flush=True)
"""


def faked_env(clock):
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE=str(clock),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    return env


class Clock:
    """The faked wall clock of every process started with it: an offset from real time."""

    def __init__(self, path):
        self.path = path
        self.set_minutes(0)

    def set_minutes(self, minutes):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            f.write(f"+{int(minutes * 60)}s\n")
        os.replace(tmp, self.path)


class Faked:
    """A Python process with the extension loaded, on a faked clock."""

    def __init__(self, db, clock, read_only=False):
        self.p = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), "ro" if read_only else "rw", EXT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=faked_env(clock.path),
            cwd=os.path.dirname(str(db)),
        )
        assert json.loads(self.p.stdout.readline()) == {"ready": True}, self.p.stderr.read()

    def sql(self, q):
        self.p.stdin.write(json.dumps({"sql": q}) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, self.p.stderr.read()
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(out["error"])
        return out["rows"]

    def wait_for(self, q, predicate, timeout=20):
        deadline = time.time() + timeout
        while True:
            got = self.sql(q)
            if predicate(got):
                return got
            assert time.time() < deadline, f"waited {timeout} s for {q}: {got}"
            time.sleep(0.25)

    def scheduled(self, name=None):
        where = "type = 'scheduled'" + (f" AND snapshot_id LIKE '{name}\\_%' ESCAPE '\\'" if name else "")
        return [r[0] for r in self.sql(f"SELECT snapshot_id FROM snapshots() WHERE {where} ORDER BY created_at")]

    def exit(self, timeout=20):
        """Ends the process without closing (the atexit path); returns seconds it took."""
        t0 = time.time()
        self.p.stdin.close()
        self.p.wait(timeout=timeout)
        took = time.time() - t0
        assert self.p.returncode == 0, self.p.stderr.read()
        return took


def schedule_row(con, name):
    got = rows(con, f"SELECT * FROM snapshot_schedules() WHERE name = '{name}'")
    assert len(got) == 1, got
    return got[0]


def make_db(tmp_path, n=1000):
    db = tmp_path / "shop.duckdb"
    con = connect(str(db))
    con.execute(f"CREATE TABLE orders AS SELECT range AS id, range * 2 AS amount FROM range({n})")
    return db, con


def test_listing_columns_types_and_errors(tmp_path):
    db, con = make_db(tmp_path)
    got = rows(con, "CALL snapshot_schedule('hourly', 'orders', every := INTERVAL 1 HOUR, keep_last := 24, keep_daily := 7)")
    cols = [d[0] for d in con.execute("FROM snapshot_schedules()").description]
    assert cols == ["name", "scope", "every", "retention", "last_run", "last_snapshot_id", "next_run", "last_error"]
    types = rows(con, "SELECT column_type FROM (DESCRIBE FROM snapshot_schedules())")
    assert [t[0] for t in types] == ["VARCHAR", "VARCHAR", "INTERVAL", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "VARCHAR"]
    name, scope, every, retention, last_run, last_id, next_run, last_error = got[0]
    assert (name, scope, retention, last_run, last_id, last_error) == ("hourly", "main.orders", "keep_last=24, keep_daily=7", None, None, None)
    assert every.total_seconds() == 3600
    # the first run is one period after the schedule was made
    assert rows(con, "SELECT next_run - now() BETWEEN INTERVAL 3590 SECOND AND INTERVAL 3600 SECOND FROM snapshot_schedules()") == [(True,)]
    # the whole database by default; every as text; months are calendar months
    rows(con, "CALL snapshot_schedule('monthly', NULL, every := '1 month')")
    assert rows(con, "SELECT scope, every FROM snapshot_schedules() WHERE name = 'monthly'")[0][0] == "*"
    assert rows(con, "SELECT every = INTERVAL 1 MONTH FROM snapshot_schedules() WHERE name = 'monthly'") == [(True,)]
    # stored in the repository, beside the snapshot folders
    stored = json.load(open(tmp_path / "snapshots" / "shop" / "schedules.json"))
    assert stored["format_version"] == 1 and [s["name"] for s in stored["schedules"]] == ["hourly", "monthly"]
    before = open(tmp_path / "snapshots" / "shop" / "schedules.json").read()
    for sql, message in [
        ("CALL snapshot_schedule('x', 'orders')", "every := INTERVAL"),
        ("CALL snapshot_schedule(NULL, 'orders', every := INTERVAL 1 HOUR)", "needs a name"),
        ("CALL snapshot_schedule('x', 'orders', every := INTERVAL 1 HOUR, keep_last := 0)", "keep_last := 0 would delete"),
        ("CALL snapshot_schedule('x', 'orders', every := INTERVAL 0 SECOND)", "too short"),
        ("CALL snapshot_schedule('x', 'orders', every := INTERVAL '-1 hour')", "too short"),
        ("CALL snapshot_schedule('x', 'orders', every := 'often')", "is not an INTERVAL"),
        ("CALL snapshot_schedule('x', 'orders', every := 42)", "must be an INTERVAL"),
        ("CALL snapshot_schedule('1st', 'orders', every := INTERVAL 1 HOUR)", "schedule name '1st'"),
        ("CALL snapshot_schedule('x/y', 'orders', every := INTERVAL 1 HOUR)", "schedule name 'x/y'"),
        ("CALL snapshot_schedule('x', 'nope', every := INTERVAL 1 HOUR)", "nope does not exist"),
        ("CALL snapshot_schedule('x', 'orders', every := INTERVAL 1 HOUR, keep_last := -1)", "keep_last"),
        ("CALL snapshot_unschedule('nope')", "no schedule named 'nope'"),
    ]:
        with pytest.raises(duckdb.Error) as e:
            con.execute(sql)
        text = str(e.value)
        assert message in text and "\n" not in text.strip(), (sql, text)
    assert "its schedules: hourly, monthly" in str(pytest.raises(duckdb.Error, con.execute, "CALL snapshot_unschedule('nope')").value)
    # nothing was changed by any of them
    assert open(tmp_path / "snapshots" / "shop" / "schedules.json").read() == before
    # a second call with the same name changes the schedule
    got = rows(con, "CALL snapshot_schedule('hourly', 'orders', every := INTERVAL 2 HOUR)")
    assert got[0][2].total_seconds() == 7200 and got[0][3] is None
    assert rows(con, "SELECT count(*) FROM snapshot_schedules()") == [(2,)]
    # unschedule returns the schedule as it was; its snapshots (none yet) would stay
    assert rows(con, "CALL snapshot_unschedule('monthly')")[0][0] == "monthly"
    assert rows(con, "SELECT name FROM snapshot_schedules()") == [("hourly",)]
    # snapshot_prune knows the type
    assert rows(con, "SELECT count(*) FROM snapshot_prune(keep_last := 1, type := 'scheduled', dry_run := true)") == [(0,)]
    con.close()


def test_locked_repository_refuses_another_scope(tmp_path):
    db, con = make_db(tmp_path)
    con.execute("CREATE TABLE other AS SELECT 1 AS x")
    con.execute("CALL snapshot_repository(granularity := 'table', scope := 'orders')")
    with pytest.raises(duckdb.Error, match="locked to table granularity"):
        con.execute("CALL snapshot_schedule('s', 'other', every := INTERVAL 1 HOUR)")
    # NULL means the locked scope
    assert rows(con, "CALL snapshot_schedule('s', NULL, every := INTERVAL 1 HOUR)")[0][1] == "main.orders"
    con.close()


def test_due_runs_follow_the_clock_and_keep_their_retention(tmp_path):
    db, con = make_db(tmp_path)
    con.execute("CALL snapshot_create('orders', id := 'manual_one')")
    con.execute("CALL snapshot_schedule('hourly', 'orders', every := INTERVAL 1 HOUR, keep_last := 2)")
    con.execute("CALL snapshot_schedule('daily', 'orders', every := INTERVAL 1 DAY, keep_last := 1)")
    con.close()
    clock = Clock(tmp_path / "clock")
    p = Faked(db, clock)
    # not due yet: nothing happens on its own
    time.sleep(2.5)
    assert p.scheduled() == []
    # an hour later (a clock jump, as after sleep): one snapshot, promptly
    clock.set_minutes(61)
    t0 = time.time()
    got = p.wait_for("SELECT last_snapshot_id FROM snapshot_schedules() WHERE name = 'hourly'", lambda r: r[0][0] is not None)
    assert time.time() - t0 < 10
    first = got[0][0]
    assert re.fullmatch(r"hourly_\d{8}_\d{6}", first), first
    assert p.sql(f"SELECT type, schedule_type FROM (SELECT type, type AS schedule_type FROM snapshots() WHERE snapshot_id = '{first}')") == [["scheduled", "scheduled"]]
    assert p.sql(f"SELECT count(*), sum(amount) FROM read_snapshot('{first}', 'orders')") == [[1000, 999000]]
    # the id is the fake clock's time, in UTC; next_run is one period after last_run
    assert p.sql("SELECT strftime(last_run AT TIME ZONE 'UTC', 'hourly_%Y%m%d_%H%M%S') = last_snapshot_id, next_run - last_run FROM snapshot_schedules() WHERE name = 'hourly'") == [[True, "1:00:00"]]
    assert p.sql("SELECT now() - last_run < INTERVAL 30 SECOND FROM snapshot_schedules() WHERE name = 'hourly'") == [[True]]
    time.sleep(2)
    assert p.scheduled("hourly") == [first]  # once per period
    assert p.scheduled("daily") == []
    # committed data only: a transaction open in the user's connection is neither seen nor disturbed
    p.sql("INSERT INTO orders SELECT range, 1 FROM range(1000, 1500)")
    p.sql("BEGIN")
    p.sql("INSERT INTO orders VALUES (-1, -1)")
    clock.set_minutes(122)
    p.wait_for("SELECT count(*) FROM snapshots() WHERE type = 'scheduled' AND snapshot_id LIKE 'hourly%'", lambda r: r[0][0] == 2)
    p.sql("COMMIT")
    second = p.scheduled("hourly")[-1]
    assert p.sql(f"SELECT count(*), min(id) FROM read_snapshot('{second}', 'orders')") == [[1500, 0]]
    assert p.sql("SELECT count(*) FROM orders") == [[1501]]
    # a third: keep_last := 2 drops the first of this schedule only
    clock.set_minutes(183)
    p.wait_for("SELECT last_snapshot_id FROM snapshot_schedules() WHERE name = 'hourly'", lambda r: r[0][0] not in (first, second))
    p.wait_for("SELECT count(*) FROM snapshots() WHERE snapshot_id = '" + first + "'", lambda r: r[0][0] == 0)
    assert len(p.scheduled("hourly")) == 2 and second in p.scheduled("hourly")
    assert p.sql("SELECT count(*) FROM snapshots() WHERE snapshot_id = 'manual_one'") == [[1]]
    # a day later: the daily schedule runs too, and its keep_last := 1 leaves the hourly ones be
    clock.set_minutes(24 * 60 + 5)
    p.wait_for("SELECT last_snapshot_id FROM snapshot_schedules() WHERE name = 'daily'", lambda r: r[0][0] is not None)
    p.wait_for("SELECT count(*) FROM snapshots() WHERE type = 'scheduled' AND snapshot_id LIKE 'hourly%'", lambda r: r[0][0] == 2)
    assert len(p.scheduled("daily")) == 1
    assert p.sql("SELECT count(*) FROM snapshot_verify('*') WHERE status <> 'ok'") == [[0]]
    assert p.exit() < 10


def test_overdue_schedule_runs_right_at_load(tmp_path):
    db, con = make_db(tmp_path)
    con.execute("CALL snapshot_schedule('hourly', '*', every := INTERVAL 1 HOUR)")
    con.close()
    clock = Clock(tmp_path / "clock")
    clock.set_minutes(5 * 60)  # the process was away for five hours
    t0 = time.time()
    p = Faked(db, clock)
    got = p.wait_for("SELECT last_snapshot_id, last_error FROM snapshot_schedules()", lambda r: r[0][0] is not None, timeout=15)
    assert time.time() - t0 < 10
    assert got[0][1] is None
    # one catch-up snapshot, not one per missed hour
    time.sleep(2)
    assert len(p.scheduled()) == 1
    assert p.sql("SELECT next_run - now() > INTERVAL 3500 SECOND FROM snapshot_schedules()") == [[True]]
    p.exit()


def test_two_processes_share_one_schedule(tmp_path):
    db, con = make_db(tmp_path, n=200_000)
    con.execute("CALL snapshot_schedule('hourly', 'orders', every := INTERVAL 1 HOUR)")
    con.close()
    clock = Clock(tmp_path / "clock")
    a = Faked(db, clock, read_only=True)
    b = Faked(db, clock, read_only=True)
    for period in (1, 2, 3):
        clock.set_minutes(61 * period)
        a.wait_for("SELECT count(*) FROM snapshots() WHERE type = 'scheduled'", lambda r: r[0][0] >= period)
        time.sleep(2.5)  # both processes have looked several times by now
        assert len(a.scheduled()) == period, a.scheduled()
        assert b.scheduled() == a.scheduled()
    # each process ran some or none; the claims are gone
    stored = json.load(open(tmp_path / "snapshots" / "shop" / "schedules.json"))
    assert "running" not in stored["schedules"][0]
    a.exit()
    b.exit()


def test_failed_run_is_recorded_and_retried_without_touching_user_queries(tmp_path):
    db, con = make_db(tmp_path)
    con.execute("CALL snapshot_schedule('hourly', 'orders', every := INTERVAL 1 HOUR)")
    con.execute("DROP TABLE orders")
    con.close()
    clock = Clock(tmp_path / "clock")
    p = Faked(db, clock)
    clock.set_minutes(61)
    got = p.wait_for("SELECT last_error, last_run FROM snapshot_schedules()", lambda r: r[0][0] is not None)
    assert "orders" in got[0][0] and got[0][1] is None
    # the user's own work goes on: no error surfaces in their queries
    for _ in range(5):
        assert p.sql("SELECT 42") == [[42]]
        time.sleep(0.3)
    p.sql("CREATE TABLE orders AS SELECT 7 AS id")
    got = p.wait_for("SELECT last_error, last_snapshot_id FROM snapshot_schedules()", lambda r: r[0][1] is not None, timeout=20)
    assert got[0][0] is None
    assert p.sql(f"SELECT * FROM read_snapshot('{got[0][1]}', 'orders')") == [[7]]
    p.exit()


def test_database_closes_and_process_exits_while_a_schedule_runs(tmp_path):
    # a table big enough that a run is often in progress when the process ends
    db, con = make_db(tmp_path, n=3_000_000)
    con.execute("CALL snapshot_schedule('often', 'orders', every := INTERVAL 1 SECOND, keep_last := 3)")
    con.close()
    repo = tmp_path / "snapshots" / "shop"
    script = f"""
import duckdb, time
con = duckdb.connect({str(db)!r}, config={{"allow_unsigned_extensions": "true"}})
con.execute("LOAD '{EXT}'")
time.sleep(4)
"""
    t0 = time.time()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert time.time() - t0 < 15  # 4 s of work, then a prompt exit (no 30 s wait)
    # closing with close(): the file is free for another process at once
    script_close = script + "con.close()\nimport duckdb as d\nd.connect(" + repr(str(db)) + ").close()\n"
    subprocess.run([sys.executable, "-c", script_close], check=True, timeout=60)
    # no staging left behind, every snapshot whole, the schedule not stuck on a dead claim
    leftovers = [n for n in os.listdir(repo) if n.startswith(".tmp") or n.startswith(".snapshot-tmp")]
    assert leftovers == [], leftovers
    con = connect(str(db))
    assert rows(con, "SELECT count(*) FROM snapshot_verify('*') WHERE status <> 'ok'") == [(0,)]
    n = rows(con, "SELECT count(*) FROM snapshots() WHERE type = 'scheduled'")[0][0]
    assert 1 <= n <= 3
    # a run cut short by the end of its process is not the schedule's error
    assert rows(con, "SELECT last_error FROM snapshot_schedules()") == [(None,)]
    con.close()


def test_shell_schedules_and_runs_on_a_faked_clock(tmp_path):
    clock = Clock(tmp_path / "clock")
    jump = tmp_path / "jump"
    jump.write_text(f"#!/bin/sh\necho \"+$1\" > {tmp_path / 'clock'}.tmp && mv {tmp_path / 'clock'}.tmp {tmp_path / 'clock'}\n")
    jump.chmod(0o755)
    script = f"""LOAD '{EXT}';
.mode json
CREATE TABLE t AS SELECT range AS id FROM range(100);
CALL snapshot_schedule('hourly', 't', every := INTERVAL 1 HOUR, keep_last := 5);
.shell {jump} 3660s
.shell env -u LD_PRELOAD sleep 4
SELECT snapshot_id, type, row_count FROM snapshots();
SELECT name, scope, every, retention, last_snapshot_id = (SELECT max(snapshot_id) FROM snapshots()) AS same, last_error FROM snapshot_schedules();
"""
    p = subprocess.run(
        [shell_binary(), "-unsigned", str(tmp_path / "s.duckdb")], input=script, capture_output=True, text=True,
        env=faked_env(clock.path), cwd=tmp_path, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    outs, dec, i, text = [], json.JSONDecoder(), 0, p.stdout.strip()
    while i < len(text):
        obj, i = dec.raw_decode(text, i)
        outs.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    snaps, sched = outs[-2], outs[-1]
    assert len(snaps) == 1 and re.fullmatch(r"hourly_\d{8}_\d{6}", snaps[0]["snapshot_id"]), snaps
    assert snaps[0]["type"] == "scheduled" and snaps[0]["row_count"] == 100
    assert sched == [{"name": "hourly", "scope": "main.t", "every": "01:00:00", "retention": "keep_last=5", "same": True, "last_error": None}]


def test_readme_automatic_snapshots_block_runs_as_written(tmp_path):
    """The README's "Automatic snapshots" SQL block, pasted into the shell over a database with
    a main.orders table."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md")).read()
    block = text.split("## Automatic snapshots", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    from conftest import run_shell

    rc, out, err = run_shell("CREATE TABLE orders AS SELECT range AS id FROM range(10);\n" + block, db=str(tmp_path / "shop.duckdb"), cwd=str(tmp_path))
    assert rc == 0 and err == "", err
    hourly, fifteen, listed, removed = out
    assert hourly[0]["name"] == "hourly" and hourly[0]["scope"] == "*" and hourly[0]["retention"] == "keep_last=24, keep_daily=7"
    assert fifteen[0]["every"] == "00:15:00" and fifteen[0]["scope"] == "main.orders"
    assert [r["name"] for r in listed] == ["hourly", "orders_15min"]
    assert removed[0]["name"] == "orders_15min"
    stored = json.load(open(tmp_path / "snapshots" / "shop" / "schedules.json"))
    assert [x["name"] for x in stored["schedules"]] == ["hourly"]
