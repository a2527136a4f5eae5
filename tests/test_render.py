"""The passport renderer: field order, labels in both languages, escaping, expression text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riskengine import model as m
from riskengine.render import passport, render, render_fill, render_profile
from riskengine.syntax import parse

DATA = Path(__file__).parent / "data"
KITCHEN_SINK = DATA / "kitchen_sink.rp"
PROFILES = Path(__file__).parent.parent / "profiles"

REGIONAL = """
profile 1A/20/2024/00001-01 "Regional unit price" {
    approved 2024-01-05
    in force 2024-01-15 .. 2024-12-31
    filling regional by "Customs value division" coordinated by "Risk unit", "Value unit"
    module declaration
    spheres 101, 999
    regional {
        max_price: number "Maximum price per kg"
        goods: list of code "HS headings"
    }
    indicators {
        cheap "Cheap": item.customs_value / item.net_mass < region.max_price
        goods: item.hs_code starts with region.goods
    }
    degree = 60 * cheap + 40 * goods
    message "Price of {item.hs_code} below the regional minimum"
    controls { 102 "Documentary check" mandatory from 50 }
}
fill for 1A/20/2024/00001-01 {
    office UA500000 "Odesa customs"
    order "7" of 2024-01-10
    valid 2024-01-15 .. 2024-04-14
    values { max_price = 3.5  goods = ("6403", "6404") }
    message "Odesa: check {item.hs_code}"
    controls { 201 "Physical inspection" if necessary from 80 }
}
"""


def _source(text: str) -> m.SourceFile:
    return parse(text, "test.rp")


def _kitchen() -> m.SourceFile:
    return parse(KITCHEN_SINK.read_text(encoding="utf-8"), str(KITCHEN_SINK))


def _passport_items(source: m.SourceFile) -> list[m.Profile | m.Fill]:
    return [x for x in source.items if isinstance(x, m.Profile | m.Fill)]


def _positions(text: str, labels: list[str]) -> list[int]:
    found = []
    for lab in labels:
        at = text.find(lab)
        assert at >= 0, f"label {lab!r} missing"
        found.append(at)
    return found


# The fields of the passport form (appendix 1 of the core seed), in its order, in Ukrainian.
SEED_ORDER_UK = [
    "Дата затвердження ПР",
    "Дата затвердження редакції ПР",
    "ПР діє з",
    "ПР діє до",
    "Редакція ПР діє з",
    "Профіль ризику N:",
    "Назва ПР",
    "Спосіб наповнення ПР",
    "Модуль АСАУР, до якого імплементується ПР",
    "Сфери ризику",
    "Індикатори ризику",
    "Назва індикатора",
    "Значення індикатора",
    "Оцінка ступеня ризику. Опис алгоритму обчислення",
    "Форми контролю",
    "Код і назва митної процедури",
    "Вид митної процедури",
    "Поріг ступеня ризику",
    "Максимальне значення негативної історії ПР",
    "Максимальне значення позитивної історії ПР",
    "Причини незавершення митного оформлення, які враховуються при розрахунку негативної "
    "історії ПР",
    "Код і назва причини",
    "Коефіцієнт значимості",
    "Контактна особа",
    "Телефон",
    "Факс",
    "Особиста поштова скринька в системі електронної пошти Держмитслужби",
    "Термін здійснення контролю ефективності ПР",
    "Аналітична довідка до профілю ризику",
    "Митна загроза. Суть проблеми",
    "Документи/підстави розроблення профілю ризику",
    "Протиріччя. Причини виникнення ризику",
    "Митна шкода. Оцінка наслідків ризику",
    "Уникнення митної загрози. Пропоновані заходи мінімізації ризику",
]


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_ukrainian_labels_follow_the_seed_form_in_order(fmt: str) -> None:
    source = _kitchen()
    text = render_profile(source.profiles[0], fmt=fmt, lang="uk", source=source)
    positions = _positions(text, SEED_ORDER_UK)
    assert positions == sorted(positions)


def test_english_labels_follow_the_same_order() -> None:
    source = _kitchen()
    text = render_profile(source.profiles[0], lang="en", source=source)
    labels = [
        "Profile approval date",
        "Edition approval date",
        "Profile in force from",
        "Profile in force to",
        "Edition in force from",
        "Risk profile No.",
        "Profile name",
        "Filling method",
        "Clearance-software module",
        "Risk spheres",
        "Risk indicators",
        "Exceptions to the risk indicators",
        "Risk degree assessment",
        "Message to the inspector",
        "Control forms",
        "Maximum negative history",
        "Maximum positive history",
        "Reasons for non-completion",
        "History kept per",
        "History window",
        "Contact person",
        "Phone",
        "Fax",
        "Personal mailbox",
        "Effectiveness control term",
        "Analytical note",
    ]
    positions = _positions(text, labels)
    assert positions == sorted(positions)


def test_profile_values_appear_with_classifier_names() -> None:
    source = _kitchen()
    profile = source.profiles[0]
    en = render_profile(profile, lang="en", source=source)
    uk = render_profile(profile, lang="uk", source=source)
    assert "2A/08/2012/00042-03" in en
    assert "2012-01-11" in en and "11.01.2012" in uk
    assert "101 — Import" in en and "101 — Імпорт" in uk
    assert "0201 — Заниження вартісних показників товару при імпорті" in uk
    # Each indicator with its condition and its own exception, as readable text.
    assert '`item.hs_code starts with ("6403", "6404")`' in en
    assert 'exception: `item.preference == "GSP"`' in en
    assert 'виняток: `item.preference == "GSP"`' in uk
    # The named file-level list the profile uses is listed with its values.
    assert '`hro = ("CN", "VN")`' in en
    # Control kinds in words, the condition of a conditional control shown.
    assert "| 201 Physical inspection | mandatory under the condition `cheap` | 70 |" in en
    assert "| 102 Documentary check | обов'язкова | 30 |" in uk
    assert "у разі необхідності" in uk
    # The degree and the history subject with its prefix.
    assert "degree = 40 * footwear" in en
    assert "`declaration.declarant.id, item.hs_code[:4]`" in en
    assert "365 days" in en and "365 днів" in uk


def test_message_placeholders_are_shown_as_code() -> None:
    source = _kitchen()
    text = render_profile(source.profiles[0], source=source)
    # Placeholders stand out; escaped braces ({{x}} in the file) are literal text.
    assert "Check `{item.hs_code}` {x} `{degree}`" in text


def test_regional_profile_has_its_parameter_table_before_the_note() -> None:
    source = _source(REGIONAL)
    text = render_profile(source.profiles[0], lang="en", source=source)
    assert (
        "regional, filled by Customs value division; coordinated by Risk unit, Value unit" in text
    )
    assert "| `region.max_price` | number | Maximum price per kg |" in text
    assert "| `region.goods` | list of code | HS headings |" in text
    assert "Code of the customs office / unit; Maximum price per kg; HS headings;" in text
    uk = render_profile(source.profiles[0], lang="uk", source=source)
    assert "Таблиця індикаторів ризику та інших параметрів ПР" in uk
    assert "| `region.goods` | перелік: код | HS headings |" in uk
    # An unknown sphere code is said in words.
    assert "999 (not in the classifier)" in text


def test_open_in_force_range_says_no_end_date() -> None:
    source = _source('profile draft "p" { in force 2024-01-15 .. }')
    assert "Profile in force to:** no end date" in render_profile(source.profiles[0])
    uk = render_profile(source.profiles[0], lang="uk")
    assert "ПР діє до:** без обмеження строку" in uk


def test_fill_lists_office_order_validity_values_message_controls() -> None:
    source = _source(REGIONAL)
    fill = source.fills[0]
    en = render_fill(fill, source=source)
    labels = [
        "Risk profile No.",
        "Code of the customs office / unit",
        "Order of the customs office",
        "Valid from",
        "Valid to",
        "Values of the region-filled parameters",
        "Message to the inspector",
        "Customs procedures formed",
    ]
    positions = _positions(en, labels)
    assert positions == sorted(positions)
    assert "1A/20/2024/00001-01 — Regional unit price" in en
    assert "UA500000 Odesa customs" in en
    assert "No. 7 of 2024-01-10" in en
    assert "| Maximum price per kg (`region.max_price`) | `3.5` |" in en
    assert '| HS headings (`region.goods`) | `("6403", "6404")` |' in en
    assert "| 201 Physical inspection | if necessary | 80 |" in en
    uk = render_fill(fill, lang="uk", source=source)
    assert "N 7 від 10.01.2024" in uk
    assert "Діє до:** 14.04.2024" in uk


def test_fill_without_message_or_controls_keeps_the_profiles() -> None:
    bare = "fill for 1A/20/2024/00001-01 { office UA500000 values { max_price = 1 } }"
    source = _source(REGIONAL.split("fill for")[0] + bare)
    text = render_fill(source.fills[0], source=source)
    assert "Message to the inspector:** — (as in the profile)" in text
    assert "Customs procedures formed:** — (as in the profile)" in text


def test_draft_and_missing_fields() -> None:
    source = _source('profile draft "Minimal" { indicators { a: item.x == 1 } }')
    text = render_profile(source.profiles[0])
    assert text.startswith("# Minimal\n")
    assert "Risk profile No.:** draft (no number assigned yet)" in text
    assert "Profile approval date:** —" in text
    assert "Control forms:** —" in text
    assert "Analytical note" not in text  # no note written, none shown


NASTY = '<script>alert("x")</script> | *bold* _u_ [l](j:s) & more'


def _nasty_source() -> m.SourceFile:
    name = NASTY.replace('"', '\\"')
    return _source(
        f'profile draft "{name}" {{\n'
        f'    contact "{name}"\n'
        f'    indicators {{ a "{name}": item.x == "a|b" }}\n'
        f'    message "{name}"\n'
        f'    controls {{ 102 "{name}" mandatory from 1 }}\n'
        f'    note {{ threat "{name}" basis "{name}" }}\n'
        "}\n"
    )


def test_html_escapes_every_user_text() -> None:
    text = render(_nasty_source().profiles, fmt="html")
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert text.count("&lt;script&gt;") >= 6  # title, heading, name, contact, indicator, ...


def test_html_is_self_contained_and_printable() -> None:
    source = _source(REGIONAL)
    text = render(_passport_items(source), fmt="html", lang="uk", source=source)
    assert text.startswith("<!DOCTYPE html>")
    assert '<html lang="uk">' in text and '<meta charset="utf-8">' in text
    assert "<style>" in text and "@media print" in text
    assert re.search(r"(?:src|href)\s*=", text) is None
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert text.count('<section class="passport">') == 2  # the profile and its fill


def test_markdown_escapes_pipes_in_table_cells_and_markup_in_text() -> None:
    text = render(_nasty_source().profiles)
    row = next(line for line in text.splitlines() if line.startswith("| ") and "a\\|b" in line)
    # Two columns: three unescaped pipes, the user's pipes escaped.
    assert len(re.findall(r"(?<!\\)\|", row)) == 3
    assert '`item.x == "a\\|b"`' in row
    assert "\\<script\\>" in text and "<script>" not in text
    assert "\\*bold\\*" in text and "\\_u\\_" in text and "\\[l\\](j:s)" in text


def test_markdown_line_starts_do_not_turn_into_blocks() -> None:
    source = _source(
        'profile draft "p" { note { threat """\n    # not a heading\n    1. not a list\n    """ } }'
    )
    text = render_profile(source.profiles[0])
    assert "\\# not a heading" in text
    assert "1\\. not a list" in text


def test_several_items_are_separated() -> None:
    source = _source(REGIONAL)
    text = render(_passport_items(source), source=source)
    assert "\n---\n" in text
    assert text.count("\n# ") + text.startswith("# ") == 2


def test_bad_format_or_language_is_a_clear_error() -> None:
    profile = _kitchen().profiles[0]
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        render_profile(profile, fmt="pdf")
    with pytest.raises(ValueError, match="unknown language 'ru'"):
        render_profile(profile, lang="ru")


# ------------------------------------------------------------------------------------ expressions

TRICKY = [
    "-(1 + 2) * 3 > 0",
    "not (item.a == 1 or item.b == 2)",
    "(if item.a == 1 then 1 else 2) + 3 > 0",
    "item.a - (item.b - item.c) > 1 - 2 - 3",
    "item.a / (item.b * item.c) >= 0",
    "(item.a == 1 or item.b == 2) and not item.c is missing",
    'item.s matches "a\\"b\\\\d" and item.t not in ("x", "y")',
    "item.d between 2024-01-01 and 2024-12-31 or item.e is not missing",
    "round(abs(-item.x), 2) == max(1, 2) and true != false",
]


def _all_exprs(source: m.SourceFile) -> list[m.Expr]:
    exprs: list[m.Expr] = []
    for p in source.profiles:
        exprs += [e for e in passport._profile_exprs(p) if e is not None]
    return exprs


def _roundtrip(expr: m.Expr, text: str) -> None:
    again = _source(f'profile "r" {{ indicators {{ z: {text} }} }}').profiles[0]
    assert again.indicators[0].condition == expr, text


@pytest.mark.parametrize("written", TRICKY)
def test_expression_text_reads_back_to_the_same_expression(written: str) -> None:
    expr = _source(f'profile "r" {{ indicators {{ z: {written} }} }}').profiles[0]
    condition = expr.indicators[0].condition
    _roundtrip(condition, passport.expr_text(condition))


def test_every_expression_of_the_sample_profiles_reads_back() -> None:
    files = [KITCHEN_SINK, *sorted(PROFILES.glob("*.rp"))]
    count = 0
    for file in files:
        for expr in _all_exprs(parse(file.read_text(encoding="utf-8"), str(file))):
            text = passport.expr_text(expr)
            assert "\n" not in text
            again = parse(f'profile "r" {{ degree = {text} }}', "r.rp").profiles[0].degree
            assert again == expr, text
            count += 1
    assert count > 0


def test_note_text_is_reflowed_into_paragraphs_and_list_items() -> None:
    threat = (
        '"""\n    line one\n    line two\n\n    second paragraph\n    - item a\n    - item b\n"""'
    )
    source = _source(f'profile draft "p" {{ note {{ threat {threat} }} }}')
    page = render_profile(source.profiles[0], fmt="html")
    assert "line one line two<br><br>second paragraph<br>- item a<br>- item b" in page
