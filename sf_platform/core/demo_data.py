"""The demo data set: a small, deterministic school-assessment export in the shape of the real one.

Loose root files named ``TABLE_NAME_YYYYMMDDHHMM.csv`` (one-, two- and three-word table names), Korean
text, codes with leading zeros, a headerless file whose column names live in the registry, a CP949
Windows export with CRLF line ends, dates, timestamps and empty values, plus TPC-H's ``region`` table.
Nothing is downloaded; the same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

SURNAMES = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"]
GIVEN = ["민준", "서연", "도윤", "하은", "시우", "지유", "주원", "서윤", "하준", "지민", "예준", "수아"]
REGIONS = ["서울", "부산", "대구", "인천", "광주", "대전", "울산", "세종", "경기", "강원"]
SCHOOL_KINDS = ["초등학교", "중학교", "고등학교"]
CLASS_NAMES = ["사랑반", "희망반", "믿음반", "하늘반", "바다반", "별빛반"]
TEST_CODES = ["PSY01", "PSY02", "APT10", "CAR07"]

TPCH_REGION = [
    (0, "AFRICA", "lar deposits. blithely final packages cajole. regular waters are final requests."),
    (1, "AMERICA", "hs use ironic, even requests. s"),
    (2, "ASIA", "ges. thinly even pinto beans ca"),
    (3, "EUROPE", "ly final courts cajole furiously final excuse"),
    (4, "MIDDLE EAST", "uickly special accounts cajole carefully blithely close requests. carefully final"),
]

# The headerless class file's column names; tables.yaml repeats them (the registry is the source the
# platform reads, this constant only generates the file).
PSY_ORD_CLASS_COLUMNS = ("class_id", "school_code", "grade", "class_name", "teacher_name", "opened_on")


@dataclass(frozen=True)
class DemoFile:
    key: str
    body: bytes
    table: str
    rows: int


def _csv_bytes(header, rows, *, delimiter=",", encoding="utf-8", line_terminator="\n") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_terminator, quoting=csv.QUOTE_MINIMAL)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def generate(seed: int = 20250829) -> list[DemoFile]:
    """The demo files, in upload order."""
    rng = random.Random(seed)
    school_codes = [f"{rng.randrange(1, 99999):07d}" for _ in range(24)]

    schools = [
        (
            code,
            f"{rng.choice(REGIONS)}{rng.choice(['중앙', '동부', '서부', '남부', '북부'])}{rng.choice(SCHOOL_KINDS)}",
            rng.choice(REGIONS),
            f"{rng.randint(1950, 2015)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "" if i % 7 == 3 else f"02-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        )
        for i, code in enumerate(school_codes)
    ]

    def members(start: int, count: int):
        for member_id in range(start, start + count):
            yield (
                member_id,
                _name(rng),
                rng.choice(school_codes),
                f"{rng.randint(2005, 2016)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                f"2025-{rng.randint(1, 8):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                "" if member_id % 5 == 0 else f"user{member_id}@example.kr",
            )

    member_header = ("MEMBER_ID", "MEMBER_NAME", "SCHOOL_CODE", "BIRTH_DATE", "JOINED_AT", "EMAIL")
    member_a = list(members(1000, 150))
    member_b = list(members(1150, 60))

    classes = [
        (
            class_id,
            rng.choice(school_codes),
            rng.randint(1, 6),
            rng.choice(CLASS_NAMES),
            _name(rng),
            f"2025-03-{rng.randint(1, 10):02d}",
        )
        for class_id in range(1, 61)
    ]

    details = []
    for target_id in range(1, 801):
        score = "" if target_id % 23 == 0 else f"{rng.uniform(0, 100):.2f}"
        details.append(
            (
                target_id,
                rng.randint(1000, 1209),
                rng.choice(TEST_CODES),
                score,
                f"2025-08-{rng.randint(1, 28):02d} {rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00",
                "" if not score else ("true" if float(score) >= 60 else "false"),
                rng.choice(["", "", "재검사 필요", "성실함, 집중력 좋음", 'note with "quotes"']),
            )
        )
    detail_header = ("TARGET_ID", "MEMBER_ID", "TEST_CODE", "SCORE", "TESTED_AT", "PASSED", "REMARK")

    return [
        DemoFile("MEMBER_202508291511.csv", _csv_bytes(member_header, member_a), "member", len(member_a)),
        DemoFile("MEMBER_202508301200.csv", _csv_bytes(member_header, member_b), "member", len(member_b)),
        DemoFile(
            "SCHOOL_INFO_202508291511.csv",
            _csv_bytes(
                ("SCHOOL_CODE", "SCHOOL_NAME", "REGION", "FOUNDED_ON", "PHONE"),
                schools,
                encoding="cp949",
                line_terminator="\r\n",
            ),
            "school_info",
            len(schools),
        ),
        DemoFile("PSY_ORD_CLASS_202508291511.csv", _csv_bytes(None, classes), "psy_ord_class", len(classes)),
        DemoFile(
            "PSY_TARGET_DETAIL_202508291511.csv",
            _csv_bytes(detail_header, details, encoding="utf-8-sig", line_terminator="\r\n"),
            "psy_target_detail",
            len(details),
        ),
        DemoFile(
            "REGION_202508291511.csv",
            _csv_bytes(("R_REGIONKEY", "R_NAME", "R_COMMENT"), TPCH_REGION, delimiter="|"),
            "region",
            len(TPCH_REGION),
        ),
    ]
