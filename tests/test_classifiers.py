"""Tests of the three classifiers (appendices 3, 4 and 5 of the risk-profile procedure)."""

from __future__ import annotations

import re

import attrs
import pytest

from riskengine.classifiers import (
    Classifier,
    ClassifierEntry,
    classifier,
    reasons,
    spheres,
    units,
)

# Every reason code that DOMAIN.md lists for appendix 3, group by group.
DOMAIN_REASON_CODES = [
    "0101", "0102", "0103", "0104", "0105", "0106", "0107", "0108",
    "0201", "0202", "0203", "0204",
    "0301", "0302", "0303",
    "0402", "0403",
    "0501", "0502", "0503",
    "0602", "0603",
    "0701", "0702", "0703",
    "0801", "0802", "0803", "0804",
    "0901",
    "1001",
    "1101",
    "1201",
    "1301",
]  # fmt: skip


# --- counts, checked by hand against seeds/003_d37a4a3f495ef100.txt -------------------------------


def test_reason_count_matches_the_seed() -> None:
    # Appendix 3 is a table of rows "group code | group name | reason code | description"; counting
    # the 4-digit reason codes per group: 1 technical 0101-0108 = 8; 2 value 0201-0204 = 4;
    # 3 classification 0301-0303 = 3; 4 quantity 0402, 0403 = 2; 5 description 0501-0503 = 3;
    # 6 non-declaration 0602, 0603 = 2; 7 origin 0701-0703 = 3; 8 illegal movement 0801-0804 = 4;
    # groups 9, 10, 11, 12, 13 one each = 5. Total 8+4+3+2+3+2+3+4+5 = 34.
    assert len(reasons()) == 34
    assert len(reasons().codes()) == 34


def test_unit_count_matches_the_seed() -> None:
    # Appendix 4 numbers its rows 1 to 20 without gaps: 20 units.
    assert len(units()) == 20
    assert units().codes() == [str(n) for n in range(1, 21)]


def test_sphere_count_matches_the_seed() -> None:
    # Appendix 5 has four sections: 1 customs regime 101-113 = 13; 2 nature of violation
    # 201-208 = 8; 3 purpose 301-307 = 7; 4 goods 401-408 = 8. Total 13+8+7+8 = 36.
    assert len(spheres()) == 36
    by_group = {g: sum(1 for c in spheres().codes() if c[0] == g) for g in "1234"}
    assert by_group == {"1": 13, "2": 8, "3": 7, "4": 8}


# --- reasons (appendix 3) ---------------------------------------------------------------------


def test_0201_is_undervaluation_on_import() -> None:
    entry = reasons().get("0201")
    assert entry is not None
    assert "undervaluation" in entry.name_en.lower()
    assert "import" in entry.name_en.lower()
    assert entry.name_uk == "Заниження вартісних показників товару при імпорті"
    assert entry.group == "2"
    assert entry.group_name_uk == "Неправильні дані про вартісні показники товару"
    assert entry.group_name_en is not None and "value" in entry.group_name_en.lower()


@pytest.mark.parametrize("code", DOMAIN_REASON_CODES)
def test_every_domain_reason_code_exists(code: str) -> None:
    assert code in reasons()
    assert reasons().get(code) is not None


def test_reason_codes_are_exactly_those_of_domain_md_in_seed_order() -> None:
    assert reasons().codes() == DOMAIN_REASON_CODES


def test_codes_missing_from_the_seed_are_absent() -> None:
    # The seed skips 0401 and 0601 (groups 4 and 6 start at "could reduce payments").
    assert "0401" not in reasons()
    assert "0601" not in reasons()
    assert reasons().get("0601") is None


def test_every_reason_code_is_group_plus_two_digits() -> None:
    for entry in reasons().entries.values():
        assert re.fullmatch(r"\d{4}", entry.code)
        assert entry.group is not None
        assert int(entry.code[:2]) == int(entry.group)
        assert entry.group_name_uk and entry.group_name_en


def test_reason_groups_are_thirteen() -> None:
    groups = {e.group for e in reasons().entries.values()}
    assert groups == {str(n) for n in range(1, 14)}


def test_reason_1301_keeps_the_seed_qualification() -> None:
    entry = reasons().get("1301")
    assert entry is not None
    assert entry.name_uk == (
        "Складено протокол про порушення митних правил "
        "(крім порушень, описаних у групах причин 2 - 12)"
    )
    assert entry.group_name_en == "Other violations of customs rules"


def test_suggest_proposes_a_near_reason_code() -> None:
    suggestion = reasons().suggest("0210")
    assert suggestion is not None
    assert suggestion.startswith("02")
    assert suggestion in reasons()


def test_suggest_pads_a_reason_code_missing_its_leading_zero() -> None:
    assert reasons().suggest("101") == "0101"
    assert "101" not in reasons()


def test_suggest_returns_none_when_nothing_is_close() -> None:
    assert reasons().suggest("abcdefgh") is None


# --- units (appendix 4) -----------------------------------------------------------------------


def test_units_accept_leading_zero() -> None:
    assert "8" in units()
    assert "08" in units()
    assert units().get("08") == units().get("8")
    entry = units().get("08")
    assert entry is not None
    assert entry.code == "8"
    assert entry.name_uk == "Центральний підрозділ з питань митної вартості товарів"
    assert "customs value" in entry.name_en.lower()


def test_units_ends() -> None:
    first, last = units().get("01"), units().get("20")
    assert first is not None and "risk management" in first.name_en.lower()
    assert last is not None and last.name_uk == "Регіональні митниці, митниці"
    assert "0" not in units()
    assert "21" not in units()
    assert units().get("21") is None
    assert units().suggest("008") == "8"


def test_units_have_no_groups() -> None:
    assert all(e.group is None for e in units().entries.values())


# --- spheres (appendix 5) ---------------------------------------------------------------------


def test_sphere_408_is_endangered_species() -> None:
    entry = spheres().get("408")
    assert entry is not None
    assert entry.name_uk == (
        "Міжнародна торгівля дикими видами тварин та рослин, що перебувають під загрозою зникнення"
    )
    assert "endangered" in entry.name_en.lower()
    assert entry.group == "4"
    assert entry.group_name_uk == "Вид товару, стосовно якого може бути вчинене порушення"


def test_sphere_groups_take_their_names_from_the_seed() -> None:
    names = {e.group: (e.group_name_uk, e.group_name_en) for e in spheres().entries.values()}
    assert names == {
        "1": ("Митний режим", "Customs regime"),
        "2": ("Можливий характер порушення", "Possible nature of the violation"),
        "3": ("Можлива мета порушення", "Possible purpose of the violation"),
        "4": (
            "Вид товару, стосовно якого може бути вчинене порушення",
            "Kind of goods in respect of which a violation may be committed",
        ),
    }


def test_sphere_codes_belong_to_their_group() -> None:
    for entry in spheres().entries.values():
        assert re.fullmatch(r"[1-4]\d\d", entry.code)
        assert entry.code[0] == entry.group


def test_sphere_lookup_is_exact() -> None:
    assert spheres().get("101") is not None
    assert spheres().get("101").name_en == "Import"  # type: ignore[union-attr]
    assert "0101" not in spheres()
    assert "114" not in spheres()


# --- the classifier objects -------------------------------------------------------------------


def test_classifier_by_key_and_caching() -> None:
    assert classifier("reasons") is reasons()
    assert classifier("units") is units()
    assert classifier("spheres") is spheres()
    with pytest.raises(ValueError, match="unknown classifier"):
        classifier("regimes")


@pytest.mark.parametrize(
    ("key", "appendix", "title_uk"),
    [
        ("reasons", 3, "Класифікатор причин незавершення митного оформлення"),
        (
            "units",
            4,
            "Класифікатор структурних підрозділів, задіяних у розробленні профілів ризику",
        ),
        ("spheres", 5, "Класифікатор сфер ризику"),
    ],
)
def test_titles_and_source(key: str, appendix: int, title_uk: str) -> None:
    c = classifier(key)
    assert isinstance(c, Classifier)
    assert c.key == key
    assert c.title_uk == title_uk
    assert c.title_en.startswith("Classifier of ")
    assert c.source.startswith(f"Appendix {appendix} to the Procedure for developing risk profiles")
    assert c.source.endswith("edition of 11.01.2012 N 22")


@pytest.mark.parametrize("key", ["reasons", "units", "spheres"])
def test_every_entry_is_complete_and_keyed_by_its_code(key: str) -> None:
    c = classifier(key)
    for code, entry in c.entries.items():
        assert isinstance(entry, ClassifierEntry)
        assert entry.code == code
        assert entry.name_uk.strip() == entry.name_uk and entry.name_uk
        assert entry.name_en.strip() == entry.name_en and entry.name_en
        assert re.search("[а-яіїєґ]", entry.name_uk, re.IGNORECASE)
        assert entry.name_en.isascii()


def test_entries_are_immutable() -> None:
    entry = reasons().get("0101")
    assert entry is not None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.name_en = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        reasons().entries["9999"] = entry  # type: ignore[index]


def test_contains_rejects_non_strings() -> None:
    assert 101 not in spheres()
    assert None not in reasons()
