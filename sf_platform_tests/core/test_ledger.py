"""The hub's load plan: what a curate run must curate, replace, skip or remove; and where rejected rows are kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.ledger import LedgerEntry, SourceObject, normalize_etag, plan_loads, source_id
from sf_platform.core.quarantine import quarantine_key


def _ledger(*entries: LedgerEntry) -> dict[str, LedgerEntry]:
    return {e.key: e for e in entries}


def _keys(items) -> list[str]:
    return [i.key for i in items]


def test_first_run_loads_everything():
    objects = [SourceObject("t/b.csv", "e2", 20), SourceObject("t/a.csv", "e1", 10)]
    plan = plan_loads(objects, {})
    assert _keys(plan.new) == ["t/a.csv", "t/b.csv"]  # in key order, whatever the listing order
    assert plan.replaced == plan.unchanged == plan.deleted == ()
    assert _keys(plan.to_load) == ["t/a.csv", "t/b.csv"]


def test_new_replaced_unchanged_and_deleted():
    objects = [
        SourceObject("t/same.csv", "aaa", 1),
        SourceObject("t/changed.csv", "new-etag", 2),
        SourceObject("t/added.csv", "ccc", 3),
    ]
    ledger = _ledger(
        LedgerEntry("t/same.csv", "aaa", 10),
        LedgerEntry("t/changed.csv", "old-etag", 20),
        LedgerEntry("t/gone.csv", "ddd", 30),
    )
    plan = plan_loads(objects, ledger)
    assert _keys(plan.new) == ["t/added.csv"]
    assert _keys(plan.replaced) == ["t/changed.csv"]
    assert plan.replaced[0].etag == "new-etag"  # the object as it is now, to be loaded
    assert _keys(plan.unchanged) == ["t/same.csv"]
    assert plan.deleted == (LedgerEntry("t/gone.csv", "ddd", 30),)  # with its row count, to remove
    assert _keys(plan.to_load) == ["t/added.csv", "t/changed.csv"]


def test_nothing_to_do_when_everything_is_loaded():
    objects = [SourceObject("t/a.csv", "e1", 1)]
    plan = plan_loads(objects, _ledger(LedgerEntry("t/a.csv", "e1", 5)))
    assert plan.to_load == () and plan.deleted == ()
    assert _keys(plan.unchanged) == ["t/a.csv"]


def test_all_objects_deleted():
    plan = plan_loads([], _ledger(LedgerEntry("t/b.csv", "x", 1), LedgerEntry("t/a.csv", "y", 2)))
    assert _keys(plan.deleted) == ["t/a.csv", "t/b.csv"]
    assert plan.to_load == ()


def test_etag_quoting_does_not_matter():
    # S3 lists ETags in double quotes; a ledger may hold them with or without.
    objects = [SourceObject("t/a.csv", '"d41d8cd98f00b204e9800998ecf8427e"', 0)]
    for stored in ("d41d8cd98f00b204e9800998ecf8427e", '"d41d8cd98f00b204e9800998ecf8427e"', ' "d41d8cd98f00b204e9800998ecf8427e" '):
        plan = plan_loads(objects, _ledger(LedgerEntry("t/a.csv", stored, 1)))
        assert _keys(plan.unchanged) == ["t/a.csv"], stored
        assert plan.to_load == ()


def test_a_different_etag_is_a_replacement_even_when_quoted():
    objects = [SourceObject("t/a.csv", '"abc"', 0)]
    plan = plan_loads(objects, _ledger(LedgerEntry("t/a.csv", '"abd"', 1)))
    assert _keys(plan.replaced) == ["t/a.csv"]


def test_multipart_etags_compare_whole():
    assert normalize_etag('"9b2cf535f27731c974343645a3985328-3"') == "9b2cf535f27731c974343645a3985328-3"
    objects = [SourceObject("t/a.csv", '"9b2cf535f27731c974343645a3985328-3"', 0)]
    plan = plan_loads(objects, _ledger(LedgerEntry("t/a.csv", "9b2cf535f27731c974343645a3985328-4", 1)))
    assert _keys(plan.replaced) == ["t/a.csv"]


keys = st.sampled_from([f"t/{c}.csv" for c in "abcdefgh"])
etags = st.sampled_from(["e1", "e2", '"e1"', '"e2"'])


@given(
    st.dictionaries(keys, etags),
    st.dictionaries(keys, st.tuples(etags, st.integers(0, 100))),
)
def test_every_object_and_ledger_entry_lands_in_exactly_one_bucket(listing, ledger_raw):
    objects = [SourceObject(k, e, 1) for k, e in listing.items()]
    ledger = {k: LedgerEntry(k, e, n) for k, (e, n) in ledger_raw.items()}
    plan = plan_loads(objects, ledger)

    planned = _keys(plan.new) + _keys(plan.replaced) + _keys(plan.unchanged)
    assert sorted(planned) == sorted(listing)
    assert set(_keys(plan.new)) == set(listing) - set(ledger)
    assert set(_keys(plan.deleted)) == set(ledger) - set(listing)
    for obj in plan.replaced:
        assert normalize_etag(ledger[obj.key].etag) != normalize_etag(obj.etag)
    for obj in plan.unchanged:
        assert normalize_etag(ledger[obj.key].etag) == normalize_etag(obj.etag)
    for group in (plan.new, plan.replaced, plan.unchanged, plan.deleted):
        assert _keys(group) == sorted(_keys(group))


# ------------------------------------------------------------------------------------------ quarantine


def test_quarantine_key_names_target_table_object_and_version():
    key = quarantine_key("curated", "member", "member/MEMBER_202508291511.csv", "0123456789abcdef0123")
    assert key == "_quarantine/curated/member/member/MEMBER_202508291511.csv.0123456789ab.rejected.csv"


def test_quarantine_key_is_the_same_for_quoted_and_bare_etags():
    quoted = quarantine_key("curated", "member", "member/a.csv", '"0123456789abcdef"')
    bare = quarantine_key("curated", "member", "member/a.csv", "0123456789abcdef")
    assert quoted == bare
    assert '"' not in quoted


def test_a_new_object_version_gets_a_new_quarantine_file():
    a = quarantine_key("curated", "member", "member/a.csv", "aaaaaaaaaaaa1")
    b = quarantine_key("curated", "member", "member/a.csv", "bbbbbbbbbbbb1")
    assert a != b


# ------------------------------------------------------------------------------------------ source ids


def test_source_ids_are_stable_positive_and_63_bit():
    ids = {key: source_id(key) for key in ["member/a.csv", "member/b.csv", "회원/가.csv", "x" * 1024]}
    assert len(set(ids.values())) == len(ids)
    assert all(0 < i < 2**63 for i in ids.values())
    # Pinned: mirrored rows carry this id, so changing the hash would orphan every row already loaded.
    assert source_id("member/a.csv") == 0xAC4CC8E9D60E1D
