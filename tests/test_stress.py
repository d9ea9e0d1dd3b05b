"""Guarantees that tests try to break: kill -9 at random points, and concurrent writers.
`make test` runs a bounded number of iterations; `make stress` runs many more
(STRESS_ITERATIONS, STRESS_SECONDS)."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import duckdb

from conftest import EXT, connect, rows

ITERATIONS = int(os.environ.get("STRESS_ITERATIONS", "8"))
SECONDS = float(os.environ.get("STRESS_SECONDS", "3"))

WORKER = textwrap.dedent("""
    import duckdb, random, sys
    db, snaps, rows_n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(seed)
    con = duckdb.connect(db, config={'allow_unsigned_extensions': 'true'})
    con.execute("LOAD '%s'")
    con.execute(f"SET snapshot_directory = '{snaps}'")
    con.execute(f"CREATE TABLE IF NOT EXISTS a AS SELECT range AS id FROM range({rows_n})")
    con.execute(f"CREATE TABLE IF NOT EXISTS b AS SELECT range AS id FROM range({rows_n})")
    n = 0
    while True:
        n += 1
        op = rnd.choice(['create', 'create', 'restore', 'drop', 'prune', 'write'])
        ids = [r[0] for r in con.execute("SELECT snapshot_id FROM snapshots() WHERE type = 'manual'").fetchall()]
        if op == 'create':
            con.execute("CALL snapshot_create(['a', 'b'])")
        elif op == 'restore' and ids:
            con.execute("CALL snapshot_restore(?, '*')", [rnd.choice(ids)])
        elif op == 'drop' and len(ids) > 3:
            con.execute("CALL snapshot_drop(?)", [ids[-1]])
        elif op == 'prune':
            con.execute("CALL snapshot_prune(keep_last := 6)")
        else:
            k = rnd.randint(1, 1000)
            con.execute(f"BEGIN; INSERT INTO a SELECT range FROM range({k}); INSERT INTO b SELECT range FROM range({k}); COMMIT")
        print(n, op, flush=True)
""") % EXT


def check_repository(db, snaps):
    con = connect(db, snapdir=snaps)
    try:
        bad = rows(con, "SELECT snapshot_id, file, status, detail FROM snapshot_verify('*') WHERE status <> 'ok'")
        assert bad == [], bad
        # every restore was all-or-nothing: the two tables always move together
        (na,), (nb,) = rows(con, "SELECT count(*) FROM a"), rows(con, "SELECT count(*) FROM b")
        assert na == nb, (na, nb)
        for (sid,) in rows(con, "SELECT snapshot_id FROM snapshots()"):
            counts = rows(con, f"SELECT row_count FROM snapshot_tables('{sid}') ORDER BY table_name")
            assert counts[0] == counts[1], (sid, counts)
        rows(con, "FROM snapshot_gc()")
        leftovers = [n for n in os.listdir(os.path.join(snaps, "c")) if n.startswith(".") and n != ".lock"]
        assert leftovers == [], leftovers
    finally:
        con.close()
        # the extension releases the database on its watchdog thread (<= 100 ms after close,
        # plus the checkpoint); another process can open the file after that
        time.sleep(0.5)


def test_kill_minus_nine_at_random_points(tmp_path):
    rnd = random.Random(int(os.environ.get("STRESS_SEED", "7")))
    db, snaps = str(tmp_path / "c.db"), str(tmp_path / "snaps")
    for i in range(ITERATIONS):
        size = rnd.choice([100, 20000, 300000])
        w = subprocess.Popen([sys.executable, "-c", WORKER, db, snaps, str(size), str(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rnd.uniform(0.3, 1.5))
        w.send_signal(signal.SIGKILL)
        out, err = w.communicate()
        assert "Traceback" not in err, err
        check_repository(db, snaps)


CONCURRENT = textwrap.dedent("""
    import duckdb, json, sys, threading, time, traceback
    snaps, tag, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})
    con.execute("LOAD '%s'")
    con.execute(f"SET GLOBAL snapshot_directory = '{snaps}'")
    con.execute("SET GLOBAL snapshot_project = 'shared'")
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    # every thread reports into these lists (an exception would only end its own thread)
    created, dropped, errors, reads = [], [], [], []
    stop = time.time() + seconds

    def writer(k):
        c = con.cursor()
        n = 0
        while time.time() < stop:
            n += 1
            sid = f"{tag}_{k}_{n}"
            try:
                c.execute(f"CALL snapshot_create('t', id := '{sid}')").fetchall()
                created.append(sid)
                if n %% 3 == 0:
                    victim = f"{tag}_{k}_{n - 1}"
                    c.execute(f"CALL snapshot_drop('{victim}')").fetchall()
                    dropped.append(victim)
                if n %% 5 == 0:
                    c.execute("SELECT count(*) FROM snapshot_prune(keep_last := 100000)").fetchall()
            except Exception as e:
                errors.append(str(e))

    def reader():
        c = con.cursor()
        while time.time() < stop:
            ids = [r[0] for r in c.execute("SELECT snapshot_id FROM snapshots()").fetchall()]
            for sid in ids[:3]:
                try:
                    got = c.execute(f"SELECT count(*) FROM read_snapshot('{sid}', 't')").fetchall()
                except duckdb.Error as e:
                    if 'not found' not in str(e):  # dropped by a writer meanwhile
                        errors.append(str(e))
                    continue
                reads.append(sid)
                if got != [(1000,)]:
                    errors.append(f"read_snapshot('{sid}', 't') counted {got}, expected [(1000,)]")

    def guarded(target, *args):
        try:
            target(*args)
        except BaseException:
            errors.append(f"{target.__name__}{args} died: {traceback.format_exc()}")

    threads = [threading.Thread(target=guarded, args=(writer, k)) for k in range(3)]
    threads.append(threading.Thread(target=guarded, args=(reader,)))
    for th in threads: th.start()
    for th in threads: th.join()
    print(json.dumps({'created': created, 'dropped': dropped, 'errors': errors, 'reads': len(reads)}))
""") % EXT


def test_two_processes_and_threads_share_a_repository(tmp_path):
    snaps = str(tmp_path / "snaps")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, snaps, tag, str(SECONDS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("p1", "p2")]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=SECONDS + 120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    created = {s for r in results for s in r["created"]}
    dropped = {s for r in results for s in r["dropped"]}
    assert all(r["errors"] == [] for r in results), [r["errors"][:3] for r in results]
    assert all(r["reads"] > 0 for r in results), [r["reads"] for r in results]
    assert len(created) > 10
    con = connect(snapdir=snaps)
    con.execute("SET snapshot_project = 'shared'")
    listed = {r[0] for r in rows(con, "SELECT snapshot_id FROM snapshots()")}
    assert listed == created - dropped
    assert rows(con, "SELECT count(*) FROM snapshot_verify('*') WHERE status <> 'ok'") == [(0,)]
    con.close()
