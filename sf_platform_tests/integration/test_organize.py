"""The organize hop against the real moto server: loose root files -> ``<table>/`` prefixes, losing nothing."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from sf_platform.core.naming import DEFAULT_LOOSE_FILE_PATTERN
from sf_platform.core.registry import parse_registry
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.organize import organize
from sf_platform.resources import aws
from sf_platform.resources.aws import LandingBucket

pytestmark = pytest.mark.integration

PATTERN = DEFAULT_LOOSE_FILE_PATTERN


def _keys(landing, prefix: str = "") -> set[str]:
    return {o["Key"] for o in landing.list_objects(prefix)}


def _root(landing) -> set[str]:
    return {o["Key"] for o in landing.list_root()}


def _body(landing, key: str) -> bytes:
    return landing.open(key).read()


def test_one_two_three_and_four_word_names(landing):
    files = {
        "MEMBER_202508291511.csv": b"MEMBER_ID\n1\n",
        "SCHOOL_INFO_202508291511.csv": b"SCHOOL_CODE\n00001\n",
        "PSY_ORD_CLASS_202508291511.csv": b"1,00012,3\n",
        "PSY_TARGET_DETAIL_X_202508291511.csv.gz": b"\x1f\x8b...",
        "member_202508300900.tsv": b"member_id\n2\n",
    }
    for key, body in files.items():
        landing.put(key, body)
    report = organize(landing, PATTERN)

    assert _root(landing) == set()
    assert _keys(landing) == {
        "member/MEMBER_202508291511.csv",
        "member/member_202508300900.tsv",
        "school_info/SCHOOL_INFO_202508291511.csv",
        "psy_ord_class/PSY_ORD_CLASS_202508291511.csv",
        "psy_target_detail_x/PSY_TARGET_DETAIL_X_202508291511.csv.gz",
    }
    assert sorted(report.moved["member"]) == [
        "member/MEMBER_202508291511.csv",
        "member/member_202508300900.tsv",
    ]
    assert report.bytes_moved["member"] == len(files["MEMBER_202508291511.csv"]) + len(
        files["member_202508300900.tsv"]
    )
    assert report.bytes_moved["psy_ord_class"] == len(files["PSY_ORD_CLASS_202508291511.csv"])
    assert report.tables() == {"member", "school_info", "psy_ord_class", "psy_target_detail_x"}
    assert report.summary("member") == {"files_moved": 2, "bytes_moved": 24, "interrupted_moves_finished": 0}
    assert _body(landing, "school_info/SCHOOL_INFO_202508291511.csv") == files["SCHOOL_INFO_202508291511.csv"]
    assert not report.failed and not report.left_in_place

    again = organize(landing, PATTERN)
    assert not again.moved and again.listed == 0


def test_names_that_do_not_match_stay_in_place_with_a_reason(landing):
    odd = [
        "README.md",
        "MEMBER.csv",
        "MEMBER_20250829.csv",
        "MEMBER_202513011200.csv",
        "1MEMBER_202508291511.csv",
    ]
    for key in odd:
        landing.put(key, b"x\n")
    landing.put("MEMBER_202508291511.csv", b"id\n1\n")
    report = organize(landing, PATTERN)

    assert _root(landing) == set(odd)
    assert report.left_in_place == {
        "README.md": "name does not match the loose-file pattern",
        "MEMBER.csv": "name does not match the loose-file pattern",
        "MEMBER_20250829.csv": "name does not match the loose-file pattern",
        "MEMBER_202513011200.csv": "timestamp '202513011200' is not a real YYYYMMDDHHMM date and time",
        "1MEMBER_202508291511.csv": "name does not match the loose-file pattern",
    }
    assert report.moved == {"member": ["member/MEMBER_202508291511.csv"]}


def test_the_pattern_comes_from_the_registry(landing):
    registry = parse_registry(
        {
            "landing": {"loose_file_pattern": r"^export-(?P<table>[a-z_]+)-(?P<ts>\d{8})\.csv$"},
            "tables": {"member": {}},
        }
    )
    landing.put("export-member-20250829.csv", b"id\n1\n")
    landing.put("MEMBER_202508291511.csv", b"id\n1\n")
    report = organize(landing, registry.landing.loose_file_pattern)
    assert report.moved == {"member": ["member/export-member-20250829.csv"]}
    assert report.left_in_place == {"MEMBER_202508291511.csv": "name does not match the loose-file pattern"}


# ------------------------------------------------------------------------------------------ never lose a file


def test_an_interrupted_move_is_finished(landing):
    """Killed after the copy, before the delete: the verified copy is there, the source too."""
    key, dest = "MEMBER_202508291511.csv", "member/MEMBER_202508291511.csv"
    landing.put(key, b"id\n1\n2\n")
    landing.client().copy_object(
        Bucket=landing.bucket, Key=dest, CopySource={"Bucket": landing.bucket, "Key": key}
    )
    report = organize(landing, PATTERN)
    assert report.finished == {"member": [key]}
    assert report.moved == {"member": [dest]}
    assert _root(landing) == set() and _body(landing, dest) == b"id\n1\n2\n"


def test_an_interrupted_multipart_copy_is_undone_then_redone(landing):
    key, dest = "MEMBER_202508291511.csv", "member/MEMBER_202508291511.csv"
    landing.put(key, b"id\n1\n")
    landing.client().create_multipart_upload(Bucket=landing.bucket, Key=dest)
    assert [u["Key"] for u in landing.list_uploads()] == [dest]
    report = organize(landing, PATTERN)
    assert report.aborted_uploads == [dest]
    assert landing.list_uploads() == []
    assert _body(landing, dest) == b"id\n1\n" and _root(landing) == set()


def test_a_copy_that_fails_verification_is_removed_and_the_source_kept(landing, monkeypatch):
    key, dest = "MEMBER_202508291511.csv", "member/MEMBER_202508291511.csv"
    landing.put(key, b"id\n1\n2\n3\n")

    def corrupting_copy(self, source_key, dest_key, size, etag):
        return self.client().put_object(Bucket=self.bucket, Key=dest_key, Body=b"id\n1\n2\n9\n")["ETag"]

    monkeypatch.setattr(LandingBucket, "_copy", corrupting_copy)
    report = organize(landing, PATTERN)
    assert list(report.failed) == [key]
    assert "has different content; copy removed, source kept" in report.failed[key]
    assert not report.moved
    assert _root(landing) == {key} and _body(landing, key) == b"id\n1\n2\n3\n"
    assert landing.head(dest) is None

    monkeypatch.undo()
    assert organize(landing, PATTERN).moved == {"member": [dest]}
    assert _body(landing, dest) == b"id\n1\n2\n3\n"


def test_a_short_copy_fails_on_size(landing, monkeypatch):
    key = "MEMBER_202508291511.csv"
    landing.put(key, b"id\n1\n2\n3\n")
    monkeypatch.setattr(
        LandingBucket,
        "_copy",
        lambda self, s, d, size, etag: self.client().put_object(Bucket=self.bucket, Key=d, Body=b"id\n")[
            "ETag"
        ],
    )
    report = organize(landing, PATTERN)
    assert "has the wrong size" in report.failed[key]
    assert _root(landing) == {key}


def test_a_source_rewritten_during_the_move_is_not_deleted(landing, monkeypatch):
    key, dest = "MEMBER_202508291511.csv", "member/MEMBER_202508291511.csv"
    landing.put(key, b"id\n1\n")
    copy = LandingBucket._copy

    def copy_then_reupload(self, source_key, dest_key, size, etag):
        result = copy(self, source_key, dest_key, size, etag)
        self.put(source_key, b"id\n1\n2\n")  # an exporter sends a corrected file meanwhile
        return result

    monkeypatch.setattr(LandingBucket, "_copy", copy_then_reupload)
    report = organize(landing, PATTERN)
    assert "changed while it was being moved; kept" in report.failed[key]
    assert _body(landing, key) == b"id\n1\n2\n"  # the new version is still there
    assert _body(landing, dest) == b"id\n1\n"  # and so is the copied old one

    monkeypatch.undo()
    again = organize(landing, PATTERN)  # two different files, one name: a person decides
    assert "already exists with different content" in again.left_in_place[key]
    assert _body(landing, key) == b"id\n1\n2\n" and _body(landing, dest) == b"id\n1\n"


def test_a_different_file_at_the_destination_is_never_overwritten(landing):
    key, dest = "MEMBER_202508291511.csv", "member/MEMBER_202508291511.csv"
    landing.put(dest, b"id\n1\n")
    landing.put(key, b"id\n2\n")
    report = organize(landing, PATTERN)
    assert report.left_in_place[key].startswith(f"{dest} already exists with different content")
    assert _body(landing, dest) == b"id\n1\n" and _body(landing, key) == b"id\n2\n"


def test_large_objects_are_copied_in_parts_and_verified(landing, monkeypatch):
    # moto takes 5 MiB parts like S3; the 5 GB threshold is lowered so an 11 MiB object needs three.
    monkeypatch.setattr(aws, "MULTIPART_COPY_THRESHOLD", 6 * 1024**2)
    monkeypatch.setattr(aws, "MULTIPART_PART_SIZE", 5 * 1024**2)
    body = os.urandom(11 * 1024**2)
    key, dest = "BIG_TABLE_202508291511.csv", "big_table/BIG_TABLE_202508291511.csv"
    landing.put(key, body)
    report = organize(landing, PATTERN)
    assert report.moved == {"big_table": [dest]}
    head = landing.head(dest)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object
    assert int(head["ContentLength"]) == len(body)
    assert hashlib.sha256(_body(landing, dest)).digest() == hashlib.sha256(body).digest()
    assert landing.head(key) is None and landing.list_uploads() == []


# ------------------------------------------------------------------------------------------ many objects


def test_twelve_hundred_loose_files_are_organized_and_crawled(landing, glue):
    """Listing pages (1,000 keys a page) in both hops: organize over the root, crawl over the prefix."""
    start = datetime(2025, 8, 29, 15, 11)
    count = 1_201
    files = {
        f"BULK_LOAD_{(start + timedelta(minutes=i)).strftime('%Y%m%d%H%M')}.csv": f"id,v\n{i},{i * 3}\n".encode()
        for i in range(count)
    }
    with ThreadPoolExecutor(max_workers=10) as pool:  # the client keeps 10 connections
        list(pool.map(lambda item: landing.put(*item), files.items()))

    report = organize(landing, PATTERN)
    assert report.listed == count
    assert len(report.moved["bulk_load"]) == count
    assert report.bytes_moved["bulk_load"] == sum(len(b) for b in files.values())
    assert _root(landing) == set()

    config = parse_registry({"tables": {"bulk_load": {}}}).table("bulk_load")
    crawled = crawl_table(landing, glue, "bulk_load", config)
    params = glue.get_table("bulk_load")["Parameters"]
    assert (params["objectCount"], params["recordCount"]) == (str(count), str(count))
    assert params["sizeKey"] == str(sum(len(b) for b in files.values()))
    assert crawled.profiles_reused == 0

    again = crawl_table(landing, glue, "bulk_load", config)  # unchanged files are not read again
    assert (again.profiles_reused, again.action) == (count, "unchanged")
    assert len(glue.table_versions("bulk_load")) == 1
