"""Identifiers: header names to safe column names, quoting per dialect, table name validation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.identifiers import (
    MAX_NAME_CHARS,
    RESERVED,
    IdentifierError,
    normalize_names,
    quote_mysql,
    quote_snowflake,
    snowflake_name,
    validate_table_name,
)


def _one(raw: str) -> str:
    return normalize_names([raw])[0]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("MEMBER_ID", "member_id"),
        ("member id", "member_id"),
        ("  First   Name  ", "first_name"),
        ("`x`", "x"),
        ('"quoted"', "quoted"),
        ("a`b", "a_b"),
        ("a'b\"c", "a_b_c"),
        ("price ($)", "price"),
        ("a-b.c/d", "a_b_c_d"),
        ("회원 이름", "회원_이름"),
        ("학년", "학년"),
        ("회원ID", "회원id"),
        ("1st place", "c_1st_place"),
        ("2024", "c_2024"),
        ("_private", "private"),
        ("order", "order_"),
        ("ORDER", "order_"),
        ("Select", "select_"),
        ("table", "table_"),
        ("from", "from_"),
        ("a\tb\nc", "a_b_c"),
        ("Ｍember", "ｍember"),  # fullwidth letters are letters; kept (NFC, not NFKC)
    ],
)
def test_normalize_single_names(raw, expected):
    assert _one(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "___", "$$$", "`", '""', "😀", "-"])
def test_names_without_any_letters_become_positional(raw):
    assert normalize_names(["id", raw]) == ["id", "col_2"]


def test_duplicates_after_normalization_get_distinct_suffixes():
    assert normalize_names(["a", "A", "a "]) == ["a", "a_2", "a_3"]


def test_dedup_suffix_does_not_collide_with_a_later_literal_name():
    names = normalize_names(["a", "a", "a_2"])
    assert names[:2] == ["a", "a_2"]
    assert len(set(names)) == 3


def test_reserved_words_and_their_escaped_form_stay_distinct():
    names = normalize_names(["order", "order_"])
    assert names[0] == "order_"
    assert len(set(names)) == 2


def test_every_reserved_word_gets_a_trailing_underscore():
    for word in sorted(RESERVED):
        assert _one(word.upper()) == f"{word}_"


def test_long_names_are_cut_to_64_with_a_hash_suffix():
    raw = "Very long column name " * 5
    name = _one(raw)
    assert len(name) == MAX_NAME_CHARS
    assert re.fullmatch(r"very_long_column_name_[a-z0-9_]*_[0-9a-f]{8}", name)
    assert _one(raw) == name  # the hash is of the name, not random


def test_long_names_sharing_a_60_char_prefix_stay_distinct():
    prefix = "x" * 60
    names = normalize_names([prefix + "aaaaaaaaaa", prefix + "bbbbbbbbbb"])
    assert names[0] != names[1]
    assert all(len(n) <= MAX_NAME_CHARS for n in names)
    # Normalized alone, each gets the same name as in the header: the hash depends only on the name.
    assert names == [_one(prefix + "aaaaaaaaaa"), _one(prefix + "bbbbbbbbbb")]


def test_exactly_64_chars_is_kept_as_is():
    assert _one("y" * 64) == "y" * 64
    assert len(_one("y" * 65)) == 64


def test_duplicates_of_64_char_names_stay_within_64():
    names = normalize_names(["z" * 64] * 3)
    assert len(set(names)) == 3
    assert all(len(n) == 64 for n in names)


def test_characters_mysql_cannot_store_in_identifiers_are_replaced():
    # MySQL identifiers only hold characters of the Basic Multilingual Plane.
    assert _one("a😀b") == "a_b"
    assert normalize_names(["\U00020000"]) == ["col_1"]  # CJK extension B, a \w letter in Python
    assert _one("회원𝐀") == "회원"


def test_names_stay_distinct_in_snowflake_which_upper_cases_them():
    names = normalize_names(["straße", "STRASSE"])
    assert names[0] != names[1]
    assert snowflake_name(names[0]) != snowflake_name(names[1])


def test_normalization_is_deterministic():
    header = ["ID", "id", "이름", "order", "x" * 80, "", "1a"]
    assert normalize_names(header) == normalize_names(list(header))


header_names = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80), max_size=25
) | st.lists(st.sampled_from(["a", "A", "a ", "order", "ORDER", "", "1", "x" * 70, "straße", "STRASSE"]))


@settings(max_examples=300)
@given(header_names)
def test_normalized_names_are_unique_safe_and_deterministic(raw):
    names = normalize_names(raw)
    assert len(names) == len(raw)
    assert names == normalize_names(raw)
    assert len(set(names)) == len(names)
    assert len({snowflake_name(n) for n in names}) == len(names)
    for name in names:
        assert 1 <= len(name) <= MAX_NAME_CHARS
        assert re.fullmatch(r"\w+", name)
        assert name == name.lower()
        assert not name[0].isdigit()
        assert name not in RESERVED
        # Every normalized name is accepted by both dialects' quoting.
        quote_mysql(name)
        quote_snowflake(snowflake_name(name))


# ------------------------------------------------------------------------------------------ quoting


@pytest.mark.parametrize(
    "name, quoted",
    [
        ("member", "`member`"),
        ("a`b", "`a``b`"),
        ("``", "``````"),
        ('a"b', '`a"b`'),
        ("회원 이름", "`회원 이름`"),
        ("x; DROP TABLE y; --", "`x; DROP TABLE y; --`"),
    ],
)
def test_quote_mysql(name, quoted):
    assert quote_mysql(name) == quoted


@pytest.mark.parametrize(
    "name, quoted",
    [
        ("MEMBER", '"MEMBER"'),
        ("member", '"member"'),
        ('a"b', '"a""b"'),
        ("a`b", '"a`b"'),
        ('"', '""""'),
        ("trailing ", '"trailing "'),
    ],
)
def test_quote_snowflake(name, quoted):
    assert quote_snowflake(name) == quoted


@pytest.mark.parametrize(
    "bad", ["", "a\x00b", "x" * 65, "trailing ", "tab\t", "\U0001f600", "a\U00020000"]
)
def test_quote_mysql_rejects_what_mysql_cannot_name(bad):
    with pytest.raises(IdentifierError):
        quote_mysql(bad)


def test_quote_mysql_accepts_64_characters():
    assert quote_mysql("x" * 64) == "`" + "x" * 64 + "`"


@pytest.mark.parametrize("bad", ["", "a\x00b", "x" * 256])
def test_quote_snowflake_rejects_bad_identifiers(bad):
    with pytest.raises(IdentifierError):
        quote_snowflake(bad)


def _unquote(quoted: str, q: str) -> str:
    assert quoted[0] == q and quoted[-1] == q
    inner = quoted[1:-1]
    # Inside, the quote character only ever appears doubled: nothing can close the identifier early.
    assert q not in inner.replace(q * 2, "")
    return inner.replace(q * 2, q)


no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))


@settings(max_examples=300)
@given(st.text(alphabet=no_nul, min_size=1, max_size=255))
def test_snowflake_quoting_round_trips_any_text(text):
    assert _unquote(quote_snowflake(text), '"') == text


mysql_names = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",), max_codepoint=0xFFFF),
    min_size=1,
    max_size=64,
).filter(lambda s: s == s.rstrip())


@settings(max_examples=300)
@given(mysql_names | st.text(alphabet="`a ", min_size=1, max_size=20).filter(lambda s: s == s.rstrip()))
def test_mysql_quoting_round_trips_any_valid_name(text):
    assert _unquote(quote_mysql(text), "`") == text


def test_snowflake_name_is_upper_case():
    assert snowflake_name("member_id") == "MEMBER_ID"
    assert snowflake_name("회원_id") == "회원_ID"


# ------------------------------------------------------------------------------------------ tables


@pytest.mark.parametrize("name", ["member", "a", "psy_ord_class", "t1", "a_", "a" * 64, "x2_y3"])
def test_valid_table_names(name):
    assert validate_table_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Member", "1abc", "_x", "a-b", "a b", "a.b", "a" * 65, "member\n", "\nmember", "회원", "a`b", None, 1],
)
def test_invalid_table_names(name):
    with pytest.raises(IdentifierError) as excinfo:
        validate_table_name(name)
    assert repr(name) in str(excinfo.value)
