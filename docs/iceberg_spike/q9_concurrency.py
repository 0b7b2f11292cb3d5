"""Q9: concurrent writers on one table through GlueCatalog (moto).
  (a) stale base in two Table handles: default retry vs commit.retry.num-retries=0
  (b) two OS processes x 15 appends each, free-running -> rows lost?
  (c) forced race: both processes pass the Glue GetTable/requirement check before either UpdateTable
  (d) moto vs VersionId: raw boto3 UpdateTable with a stale VersionId
  (e) two processes replacing the SAME object (delete key + append) concurrently
"""
import os, sys, time, json, multiprocessing as mp
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import EqualTo
from common import catalog, fresh_table, make_rows, glue


def rows(t):
    return t.refresh().scan().count()


def worker_free(name, n, start_evt, q):
    cat = catalog(); t = cat.load_table("curated.orders_q9b")
    start_evt.wait()
    errs = []
    for i in range(n):
        try:
            t.append(make_rows(2, source_key=f"{name}-{i}", start_id=hash((name, i)) % 10**9))
        except Exception as e:
            errs.append(type(e).__name__ + ": " + str(e)[:110])
    q.put((name, errs))


def worker_race(name, barrier_dir, q):
    """Barrier inside GlueCatalog._update_glue_table: both have read Glue VersionId N and validated."""
    from pyiceberg.catalog import glue as g
    orig = g.GlueCatalog._update_glue_table
    def patched(self, database_name, table_name, table_input, version_id):
        open(os.path.join(barrier_dir, name), "w").close()
        while len(os.listdir(barrier_dir)) < 2:
            time.sleep(0.01)
        return orig(self, database_name, table_name, table_input, version_id)
    g.GlueCatalog._update_glue_table = patched
    cat = catalog(); t = cat.load_table("curated.orders_q9c")
    try:
        t.append(make_rows(3, source_key=name, start_id=1000 if name == "P1" else 2000))
        q.put((name, "committed", t.metadata_location.rsplit("/", 1)[1]))
    except Exception as e:
        q.put((name, type(e).__name__, str(e)[:150]))


def worker_replace(name, start_evt, q):
    cat = catalog(); t = cat.load_table("curated.orders_q9e")
    start_evt.wait()
    try:
        with t.transaction() as tx:
            tx.delete(EqualTo("_sf_source_key", "x"))
            tx.append(make_rows(2, source_key="x", start_id=5000 if name == "P1" else 6000))
        q.put((name, "committed"))
    except Exception as e:
        q.put((name, type(e).__name__ + ": " + str(e)[:160]))


if __name__ == "__main__":
    import logging; logging.basicConfig(level=logging.ERROR)
    cat = catalog()
    # (a)
    t = fresh_table(cat, "orders_q9a"); t.append(make_rows(1))
    h1, h2 = cat.load_table("curated.orders_q9a"), cat.load_table("curated.orders_q9a")
    h1.append(make_rows(1, source_key="h1", start_id=10))
    h2.append(make_rows(1, source_key="h2", start_id=20))       # stale base -> retried internally
    print("(a) default (commit.retry.num-retries=4): stale-base append succeeded, rows =", rows(h2), "(expect 3)")
    with h2.transaction() as tx:
        tx.set_properties({"commit.retry.num-retries": "0"})
    h1, h2 = cat.load_table("curated.orders_q9a"), cat.load_table("curated.orders_q9a")
    h1.append(make_rows(1, source_key="h1b", start_id=30))
    try:
        h2.append(make_rows(1, source_key="h2b", start_id=40))
        print("(a) retries=0: second append succeeded?!")
    except CommitFailedException as e:
        print("(a) retries=0: second append ->", type(e).__name__, ":", str(e)[:140])

    # (b)
    fresh_table(cat, "orders_q9b")
    ctx = mp.get_context("spawn"); q = ctx.Queue(); ev = ctx.Event(); N = 15
    ps = [ctx.Process(target=worker_free, args=(f"P{i}", N, ev, q)) for i in (1, 2)]
    [p.start() for p in ps]; time.sleep(3); t0 = time.perf_counter(); ev.set(); [p.join() for p in ps]
    res = [q.get() for _ in ps]
    t = cat.load_table("curated.orders_q9b")
    print(f"(b) 2 procs x {N} appends in {time.perf_counter()-t0:.1f}s: errors={res}; rows={t.scan().count()} "
          f"(expect {2*N*2}); snapshots={len(t.snapshots())}; Glue versions="
          f"{len(glue().get_table_versions(DatabaseName='curated', TableName='orders_q9b')['TableVersions'])}")

    # (c)
    import tempfile
    t = fresh_table(cat, "orders_q9c"); t.append(make_rows(1))
    bdir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(__file__)))
    ps = [ctx.Process(target=worker_race, args=(n, bdir, q)) for n in ("P1", "P2")]
    [p.start() for p in ps]; [p.join() for p in ps]
    res = [q.get() for _ in ps]
    t = cat.load_table("curated.orders_q9c")
    keys = sorted(set(t.scan().to_arrow()["_sf_source_key"].to_pylist()))
    print("(c) forced race:", res)
    print("    final rows:", t.scan().count(), "(expect 7 if both kept) keys:", keys,
          "snapshots:", len(t.snapshots()))

    # (d)
    gl = glue()
    cur = gl.get_table(DatabaseName="curated", Name="orders_q9c")["Table"]
    ti = {k: cur[k] for k in ("Name", "StorageDescriptor", "Parameters", "TableType")}
    stale = str(int(cur["VersionId"]) - 1)
    try:
        gl.update_table(DatabaseName="curated", TableInput=ti, VersionId=stale)
        print(f"(d) moto accepted UpdateTable with stale VersionId={stale} (current {cur['VersionId']}) -> "
              "moto does NOT implement Glue optimistic locking")
    except gl.exceptions.ConcurrentModificationException as e:
        print("(d) moto rejected stale VersionId:", e)

    # (e)
    t = fresh_table(cat, "orders_q9e"); t.append(make_rows(2, source_key="x")); t.append(make_rows(2, source_key="y", start_id=100))
    ev = ctx.Event()
    ps = [ctx.Process(target=worker_replace, args=(n, ev, q)) for n in ("P1", "P2")]
    [p.start() for p in ps]; time.sleep(3); ev.set(); [p.join() for p in ps]
    res = [q.get() for _ in ps]
    t = cat.load_table("curated.orders_q9e")
    ids = sorted(t.scan(row_filter=EqualTo("_sf_source_key", "x")).to_arrow()["id"].to_pylist())
    print("(e) concurrent replace of key x:", res)
    print("    x rows now:", ids, "(exactly 2 = one writer won cleanly; 4 = duplicated)")
    print("    snapshots:", [s.summary.operation.value for s in t.snapshots()], "(6 if both serialised, 4 if one commit was overwritten)")
