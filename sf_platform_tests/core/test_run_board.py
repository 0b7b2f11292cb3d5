"""The run board behind `sf-platform materialize`'s progress table and summary."""

from __future__ import annotations

from sf_platform.core.run_board import (
    DONE,
    FAILED,
    RUNNING,
    SKIPPED,
    Board,
    cell_text,
    hop_line,
    quarantine_location,
    summary_lines,
)


def _uri(key: str) -> str:
    return f"s3://bucket/{key}"


def _board() -> Board:
    pairs = [(t, h) for t in ("member", "region") for h in ("crawl", "mysql")]
    return Board("load_tables", "run-1", pairs, ["organize", "crawl", "mysql"], started=100.0)


def test_a_cell_goes_running_then_done_with_the_materialization_metadata():
    board = _board()
    board.start("member", "crawl", 101.0)
    assert board.snapshot()[("member", "crawl")].state == RUNNING
    assert cell_text(board.snapshot()[("member", "crawl")], 103.5) == "running 2.5s"

    board.done("member", "crawl", {"dagster/row_count": 210, "started_at": 101.0, "finished_at": 104.0}, 104.1)
    board.done("member", "mysql", {"dagster/row_count": 212, "rows_loaded": 2, "rows_quarantined": 1,
                                   "quarantine_keys": ["_quarantine/mysql/member/a.rejected.csv"]}, 105.0)

    crawl, mysql = board.snapshot()[("member", "crawl")], board.snapshot()[("member", "mysql")]
    assert (crawl.state, crawl.rows, crawl.seconds(0)) == (DONE, 210, 3.0)
    assert cell_text(mysql, 0) == "212 +2 1q"
    assert hop_line("member", "mysql", mysql, 105.0, since=100.0) == (
        "[   5.0s] member mysql done: 212 rows, 2 loaded, 1 quarantined in 0.0s")
    assert board.done("nation", "crawl", {}, 1.0) is None  # not in this run: ignored


def test_a_failure_names_the_table_and_hop_and_cells_never_reached_end_skipped():
    board = _board()
    board.done("region", "crawl", {"dagster/row_count": 5}, 101.0)
    board.fail("region", "mysql", "OperationalError: (2003, refused)", 102.0)
    board.skip("member", "mysql", "crawl did not complete", 102.0)
    board.check("region", "crawl", "files_readable", False, "1 unreadable: x.csv", "WARN")
    board.finish(103.0)

    cells = board.snapshot()
    assert cells[("member", "crawl")].state == SKIPPED  # the run ended before it
    assert cells[("region", "mysql")].state == FAILED
    assert board.failed_tables() == {"region": ("mysql", "OperationalError: (2003, refused)")}
    lines = summary_lines(board, _uri, "/state/logs/run-1.log")
    assert lines[0] == "load_tables: run run-1 FAILED in 3.0 s: 1 of 4 hops done, 1 checks (1 not passed)"
    assert lines[1] == "  log: /state/logs/run-1.log"
    assert lines[2].split() == ["table", "crawl", "mysql"]  # organize was not selected: no column
    assert lines[3].split() == ["member", "skipped", "skipped"]
    assert lines[4].split() == ["region", "5", "failed"]
    assert "  check WARN: region crawl files_readable: 1 unreadable: x.csv" in lines
    assert lines[-1] == "  FAILED: region (mysql: OperationalError: (2003, refused))"


def test_a_done_cell_is_never_turned_skipped_or_failed_later():
    board = _board()
    board.done("member", "crawl", {"dagster/row_count": 1}, 101.0)
    board.fail("member", "crawl", "late", 102.0)
    board.finish(103.0)
    assert board.snapshot()[("member", "crawl")].state == DONE


def test_quarantine_location_is_the_object_or_the_folder_of_all_of_them():
    assert quarantine_location(_uri, []) == ""
    assert quarantine_location(_uri, ["_quarantine/mysql/t/a.csv"]) == "s3://bucket/_quarantine/mysql/t/a.csv"
    keys = ["_quarantine/mysql/t/x/a.csv", "_quarantine/mysql/t/y/b.csv"]
    assert quarantine_location(_uri, keys) == "s3://bucket/_quarantine/mysql/t/ (2 objects)"
