"""Profile N tx.append() calls in one transaction (why slow?)."""
import cProfile, pstats, sys, time, json
from common import catalog, fresh_table, make_rows
N = int(sys.argv[1])
cat = catalog()
t = fresh_table(cat, "orders_q5p")
batches = [make_rows(5, source_key=f"obj/{i:05d}.csv", start_id=i * 10) for i in range(N)]
pr = cProfile.Profile()
t0 = time.perf_counter(); lap = t0
pr.enable()
with t.transaction() as tx:
    for i, b in enumerate(batches):
        tx.append(b)
        if (i + 1) % 10 == 0:
            now = time.perf_counter(); print(f"  appends {i-8:>4}-{i+1:<4}: {now-lap:.2f}s"); lap = now
pr.disable()
print(f"N={N}: {time.perf_counter()-t0:.1f}s")
pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
