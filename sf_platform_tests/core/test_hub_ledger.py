"""The hub ledger without services: content-named, round-trips, plans like the loaders' ledgers, and its
pointer is carried by commits that change no object."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.ledger import SourceObject, plan_loads
from sf_platform.hub.ledger import P_LEDGER, P_OBJECTS, P_QUARANTINED, P_ROWS, Curated, HubLedger, carried

entries = st.dictionaries(
    st.text(min_size=1, max_size=30),
    st.builds(Curated, etag=st.text(max_size=8), rows=st.integers(0, 10**9), rejected=st.integers(0, 99),
              raw_bytes=st.integers(0, 10**12), quarantine_key=st.text(max_size=20)),
    max_size=30,
)


@given(entries)
def test_the_ledger_round_trips_and_is_named_by_its_content(objects):
    ledger = HubLedger(objects)
    again = HubLedger.from_bytes(ledger.to_bytes())
    assert again.objects == objects
    assert again.key("t") == ledger.key("t") and ledger.key("t").startswith("_sf/hub/t/ledger-")
    assert HubLedger(dict(reversed(list(objects.items())))).key("t") == ledger.key("t")  # order does not matter


def test_a_changed_entry_changes_the_name():
    one = HubLedger({"t/a.csv": Curated("e1", 3)})
    assert one.key("t") != HubLedger({"t/a.csv": Curated("e2", 3)}).key("t")


def test_the_ledger_plans_new_replaced_and_deleted_objects_and_sums_its_rows():
    ledger = HubLedger({"t/a.csv": Curated("e1", 3, 1), "t/b.csv": Curated("e1", 5), "t/gone.csv": Curated("e1", 2)})
    plan = plan_loads([SourceObject("t/a.csv", "e1", 1), SourceObject("t/b.csv", "e2", 1),
                       SourceObject("t/new.csv", "e1", 1)], ledger.entries())
    assert [o.key for o in plan.new] == ["t/new.csv"] and [o.key for o in plan.replaced] == ["t/b.csv"]
    assert [e.key for e in plan.deleted] == ["t/gone.csv"] and [o.key for o in plan.unchanged] == ["t/a.csv"]
    summary = ledger.summary("t", "curate")
    assert (summary[P_OBJECTS], summary[P_ROWS], summary[P_QUARANTINED]) == ("3", "10", "1")
    assert summary[P_LEDGER] == ledger.key("t") and summary["sf.operation"] == "curate"


def test_a_compaction_carries_the_pointer_and_counts_forward():
    summary = {**HubLedger({"t/a.csv": Curated("e1", 3)}).summary("t", "curate"), "total-records": "3"}
    assert carried(summary, "compaction") == {**{k: v for k, v in summary.items() if k.startswith("sf.")},
                                              "sf.operation": "compaction"}
    assert carried(None, "compaction") == {"sf.operation": "compaction"}
