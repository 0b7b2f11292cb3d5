"""How does N tx.append() calls inside ONE transaction scale? (no profiler) usage: q5_tx_scaling.py N"""
import sys, time
from common import catalog, fresh_table, make_rows
N = int(sys.argv[1]) if len(sys.argv) > 1 else 120
t = fresh_table(catalog(), "orders_q5s")
batches = [make_rows(5, source_key=f"obj/{i:05d}.csv", start_id=i * 10) for i in range(N)]
t0 = lap = time.perf_counter()
with t.transaction() as tx:
    for i, b in enumerate(batches):
        tx.append(b)
        if (i + 1) % 20 == 0:
            now = time.perf_counter(); print(f"appends {i-18:>4}-{i+1:<4}: {(now-lap)/20*1000:.0f} ms/append", flush=True); lap = now
    t_stage = time.perf_counter() - t0
print(f"N={N}: staged {t_stage:.1f}s, total incl. commit {time.perf_counter()-t0:.1f}s")
