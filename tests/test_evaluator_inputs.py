"""The input path (issue 13): the reader compiled per profile set accepts and refuses exactly what
``normalise_declaration`` does for the fields the set reads, from data and from JSON text, and the
engine scores what it reads as it scores normalised declarations."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.gen_profiles import declarations as generated_declarations
from benchmarks.gen_profiles import profile_sources
from riskengine import model as m
from riskengine.catalogue import Catalogue, FieldType, default_catalogue
from riskengine.declaration import (
    Declaration,
    DeclarationError,
    JsonInputError,
    load_json,
    normalise_declaration,
)
from riskengine.evaluator import (
    Engine,
    ProfileSet,
    RejectedDeclaration,
    ScoreResult,
    inputs,
    inputs_typed,
)
from riskengine.evaluator.batching import gc_paused
from riskengine.evaluator.inputs import ENGINE_FIELDS, InputReader, dump_json, profile_fields

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = default_catalogue()
DAY = dt.date(2024, 4, 2)


@pytest.fixture(scope="module")
def samples() -> Engine:
    return Engine.load(ROOT / "profiles")


def restricted(fields: tuple[str, ...]) -> Catalogue:
    """The catalogue of only ``fields``: what normalise_declaration reads is then what the
    reader reads."""
    return Catalogue({p: f for p, f in CATALOGUE.fields.items() if p in fields})


def outcome(read: Callable[[], Declaration]) -> Any:
    """What reading gives: the records and id, or the error's field, item and reason."""
    try:
        decl = read()
    except DeclarationError as exc:
        return ("error", exc.field, exc.item, exc.reason)
    except JsonInputError as exc:
        return ("json", str(exc), exc.line, exc.column)
    return ("ok", dict(decl.header), [dict(r) for r in decl.items], decl.id)


# --- which fields a set reads ------------------------------------------------------------------


def _every_field_ref(node: Any, out: set[str]) -> None:
    """Every FieldRef anywhere in a model object (a walk of all attrs fields, slow and sure)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, m.FieldRef):
            out.add(current.path)
        elif attrs.has(type(current)):
            stack.extend(getattr(current, a.name) for a in attrs.fields(type(current)))
        elif isinstance(current, tuple | list):
            stack.extend(current)
        elif isinstance(current, dict):
            stack.extend(current.values())


@pytest.mark.parametrize("where", ["samples", "generated"])
def test_profile_fields_finds_every_field_the_model_holds(where: str) -> None:
    profile_set = (
        Engine.load(ROOT / "profiles").profiles
        if where == "samples"
        else ProfileSet.load(sources=profile_sources(300))
    )
    for cp in profile_set:
        expected: set[str] = set()
        _every_field_ref(cp.profile, expected)
        for fill in cp.fills:
            _every_field_ref(fill, expected)
        assert profile_fields(cp.profile, cp.fills) == expected, cp.key


def test_the_reader_reads_the_profiles_fields_and_the_engines(samples: Engine) -> None:
    reader = samples.profiles.reader
    assert reader is samples.profiles.reader  # compiled once per set
    read = set(reader.fields)
    assert set(ENGINE_FIELDS) <= read
    assert {"item.hs_code", "item.customs_value", "declaration.declarant.id"} <= read
    assert "declaration.number" not in read and "item.invoice_value" not in read
    # catalogue order, so that the first bad field is the one the normaliser names first
    order = [f.path for f in CATALOGUE if f.path in read]
    assert list(reader.fields) == order
    assert "def read(raw):" in reader.source


def test_fields_nobody_reads_are_left_out_and_raw_keeps_them(samples: Engine) -> None:
    raw = {
        "id": "D1",
        "number": "UA/1",
        "date": "2024-04-02",
        "invoice": {"anything": [1, 2]},
        "items": [{"hs_code": "6403990000", "invoice_value": "not a number"}],
    }
    decl = samples.profiles.reader.read(raw)
    assert decl.header == {"id": "D1", "date": DAY}
    assert decl.items == ({"hs_code": "6403990000"},)
    assert decl.raw is raw


# --- the reader against the normaliser -----------------------------------------------------------

_TEXT = st.text(max_size=6)
_BAD = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(True),
    st.just(False),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.integers(min_value=10**15 - 2, max_value=10**15 + 2),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True, places=3),
    st.just(10**400),
    _TEXT,
    st.sampled_from(
        [
            "12,5",
            " 12.5 ",
            "1e999",
            "-1",
            "-0.0",
            "true",
            " FALSE ",
            "2024-04-02",
            " 2024-02-30",
            "2024-4-2",
            "",
            "0x10",
            "1_000",
            "١٢",
        ]
    ),
    st.dates(),
    st.datetimes(),
)
_GOOD = {
    FieldType.NUMBER: st.one_of(st.integers(-5, 10**6), st.floats(0, 1e6)),
    FieldType.DATE: st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)).map(dt.date.isoformat),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.STRING: _TEXT,
    FieldType.CODE: st.sampled_from(["CN", "6403990000", "40", "UA100110"]),
}


def _value(kind: FieldType) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), _GOOD[kind], _BAD)


def _object(scope: str) -> st.SearchStrategy[dict[str, Any]]:
    """An object with any of the scope's fields (good, bad, null), groups that are sometimes
    not objects, and keys the catalogue does not know."""
    fields = CATALOGUE.scope_fields(scope)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field in draw(st.lists(st.sampled_from(fields), max_size=12, unique=True)):
            *groups, last = field.name.split(".")
            node = data
            for group in groups:
                found = node.get(group)
                if found is None or not isinstance(found, dict):
                    found = node[group] = {}
                node = found
            node[last] = draw(_value(field.type))
        for group in draw(st.lists(st.sampled_from(["declarant", "transport", "exporter"]),
                                   max_size=1)):  # fmt: skip
            data[group] = draw(st.one_of(st.none(), _BAD))
        if draw(st.booleans()):
            data["unknown"] = draw(_BAD)
        return data

    return build()


@st.composite
def raw_declarations(draw: st.DrawFn) -> Any:
    header = draw(_object("declaration"))
    shape = draw(st.sampled_from(["list", "list", "list", "tuple", "none", "absent", "bad"]))
    items: Any = draw(st.lists(st.one_of(_object("item"), _BAD), max_size=3))
    if shape == "tuple":
        items = tuple(items)
    elif shape == "none":
        items = None
    elif shape == "bad":
        items = draw(_BAD)
    if shape != "absent":
        header["items"] = items
    if draw(st.integers(0, 30)) == 0:
        return draw(_BAD)  # not an object at all
    return header


_SUBSETS = st.lists(st.sampled_from([f.path for f in CATALOGUE]), max_size=12, unique=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_declarations(), _SUBSETS)
def test_the_reader_accepts_and_refuses_what_the_normaliser_does(
    raw: Any, paths: list[str]
) -> None:
    reader = InputReader(CATALOGUE, paths)
    expected = outcome(lambda: normalise_declaration(raw, restricted(reader.fields)))
    assert outcome(lambda: reader.read(raw)) == expected
    if expected[0] == "ok":  # and it reads what the full normaliser reads for those fields
        try:
            full = normalise_declaration(raw, CATALOGUE)
        except DeclarationError:
            return
        names = {p.partition(".")[2] for p in reader.fields if p.startswith("declaration.")}
        assert expected[1] == {k: v for k, v in full.header.items() if k in names}


def test_a_reader_of_the_sample_profiles_agrees_on_generated_declarations(samples: Engine) -> None:
    reader = samples.profiles.reader
    narrow = restricted(reader.fields)
    for raw in generated_declarations(300, seed=5):
        assert outcome(lambda r=raw: reader.read(r)) == outcome(
            lambda r=raw: normalise_declaration(r, narrow)
        )


def test_a_catalogue_without_declaration_id_takes_the_inputs_id() -> None:
    catalogue = Catalogue({p: f for p, f in CATALOGUE.fields.items() if p != "declaration.id"})
    reader = InputReader(catalogue, ["item.hs_code"])
    assert reader.read({"id": 17, "items": []}).id == "17"
    assert normalise_declaration({"id": 17}, catalogue).id == "17"


def test_structure_errors_are_the_normalisers(samples: Engine) -> None:
    read = samples.profiles.reader.read
    cases = [
        ([1], ("declaration", None, "expected an object, got a list")),
        ({"items": "x"}, ("items", None, 'expected a list, got "x"')),
        ({"items": [{}, 3]}, ("item", 2, "expected an object, got 3")),
        ({"declarant": "x"}, ("declaration.declarant", None, 'expected an object, got "x"')),
        ({"items": [{"customs_value": -1}]}, ("item.customs_value", 1,
                                              "expected a number that is not negative, got -1")),
    ]  # fmt: skip
    for raw, (field, item, reason) in cases:
        with pytest.raises(DeclarationError) as info:
            read(raw)
        assert (info.value.field, info.value.item, info.value.reason) == (field, item, reason)


# --- JSON text ------------------------------------------------------------------------------------


@pytest.fixture(params=["typed", "orjson", "json"])
def decoder(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, samples: Engine
) -> Iterator[str]:
    """Every JSON test runs with each decoder: msgspec's typed schema (then orjson, then the
    standard library when it refuses), orjson (then the standard library), the standard
    library alone."""
    if request.param != "typed":
        monkeypatch.setattr(samples.profiles.reader, "_typed", None)
    if request.param == "json":
        monkeypatch.setattr(inputs, "_orjson", None)
    yield request.param


def without_typed(reader: InputReader) -> InputReader:
    """The same reader without msgspec's typed decoder."""
    other = copy.copy(reader)
    other._typed = None
    return other


def _texts() -> st.SearchStrategy[str]:
    """JSON texts of random declarations, some broken: what load_json refuses must be refused
    with its message, what it reads must be read the same."""

    def dump(raw: Any) -> str:
        return json.dumps(raw, default=str)  # dates, Decimals and the like as text

    broken = st.sampled_from(
        ['{"items": [', "NaN", '{"id": "\\ud800", "date": "2024-04-02"}', '{"x": 1e999}',
         '{"items": [{"customs_value": 1e999}]}',
         '{"items": [{"net_mass": 123456789012345678901234}]}',
         '{"declarant": {"id": 123456789012345678901234567890}}', "[" * 1200 + "]" * 1200,
         '{"x": ' + "9" * 5000 + "}", '{"a": 1,}', "\ufeff{}", '{"date": "2024-04-02", "date": 5}',
         '{"items": [{"hs_code": "\\ud83d"}]}', '{"id": -0, "items": [{"net_mass": -0.0}]}']
    )  # fmt: skip
    return st.one_of(raw_declarations().map(dump), broken)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts(), paths=_SUBSETS, as_bytes=st.booleans())
def test_json_text_is_read_exactly_as_the_standard_library_reads_it(
    text: str, paths: list[str], as_bytes: bool
) -> None:
    reader = InputReader(CATALOGUE, paths)
    data: bytes | str = text.encode("utf-8", "surrogatepass") if as_bytes else text

    def stdlib() -> Declaration:
        return reader.read(load_json(data))

    expected = outcome(stdlib)
    assert outcome(lambda: reader.read_json(data)) == expected  # typed, then orjson, then json
    general = without_typed(reader)
    assert outcome(lambda: general.read_json(data)) == expected  # orjson, then json
    with pytest.MonkeyPatch.context() as patch:  # the standard library alone
        patch.setattr(inputs, "_orjson", None)
        assert outcome(lambda: general.read_json(data)) == expected


def test_the_typed_decoder_reads_plain_declarations_itself(samples: Engine) -> None:
    """Not a silent fallback: well-typed JSON is read by msgspec's schema, with the values the
    general path gives; what it does not accept it leaves to the general path."""
    reader = samples.profiles.reader
    assert reader._typed is not None
    for raw in generated_declarations(100, seed=4):
        for data in (json.dumps(raw), json.dumps(raw).encode()):
            fast = reader._typed(data)
            assert fast is not None
            assert outcome(lambda f=fast: f) == outcome(lambda d=data: reader.read(load_json(d)))
    general = [
        '{"items": [{"customs_value": "12.5"}]}', '{"regime": 40}', '{"date": " 2024-04-02"}',
        '{"items": [{"net_mass": -1}]}', '{"x": "\\ud800"}', "[1]", '{"items": {}}',
        '{"declarant": {"aeo": "true"}}', '{"items": [{"hs_code": 6403}]}',
    ]  # fmt: skip
    for text in general:
        assert reader._typed(text) is None, text
    many = json.dumps({"date": "2024-04-02", "x": [[0]] * 300})  # brackets: the general path
    assert reader._typed(many) is None and reader.read_json(many).header == {"date": DAY}


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**64 - 1))
def test_orjson_reads_every_float_and_64_bit_integer_as_python_does(x: float, n: int) -> None:
    """What the reader's retry rests on: the documents both decoders read give the same
    numbers, except integers beyond 64 bits (orjson: a float; refused by every field type
    since they are beyond 1e15 and not ints, so the standard library reads them again)."""
    for text in (repr(x), f"{x:.17e}", f"{x:.3e}", f"{x:.25f}"):
        try:
            fast = orjson.loads(text)
        except orjson.JSONDecodeError:  # beyond the float range: refused, read by the stdlib
            assert json.loads(text) in (float("inf"), float("-inf"))
        else:
            assert fast == json.loads(text)
    assert orjson.loads(str(n)) == n and type(orjson.loads(str(n))) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"items": [', "not valid JSON: Expecting value"),
        (b"NaN", "not valid JSON: NaN is not a JSON value"),
        (b'{"a": "\xff"}', "not valid UTF-8 text"),
    ],
)
def test_score_json_refuses_what_is_not_json(
    samples: Engine, decoder: str, text: bytes, message: str
) -> None:
    with pytest.raises(JsonInputError) as info:
        samples.score_json(text, DAY)
    assert str(info.value).startswith(message)


def test_text_and_data_given_to_the_wrong_method_are_said_so(samples: Engine, decoder: str) -> None:
    text = b'{"id": "A", "date": "2024-04-02"}'
    with pytest.raises(TypeError) as info:
        samples.score_json({"id": "A", "date": "2024-04-02"})  # type: ignore[arg-type]
    assert str(info.value) == "JSON text is bytes or str, not dict: score data with Engine.score"
    for wrong in (None, 5, memoryview(text)):
        with pytest.raises(TypeError, match=f"not {type(wrong).__name__}$"):
            samples.score_json(wrong)  # type: ignore[arg-type]
    for as_text in (text, text.decode()):
        with pytest.raises(TypeError) as info:
            samples.score(as_text)  # type: ignore[arg-type]
        assert str(info.value) == (
            "Engine.score takes a Declaration or data (a dict); JSON text goes to Engine.score_json"
        )
    assert samples.score_json(bytearray(text)) == samples.score_json(text)


def test_score_json_scores_as_score_does(samples: Engine, decoder: str) -> None:
    for raw in generated_declarations(200, seed=3):
        expected = samples.score(normalise_declaration(raw))
        assert samples.score(raw) == expected
        assert samples.score_json(json.dumps(raw).encode()) == expected
        assert samples.score_json(json.dumps(raw, ensure_ascii=False)) == expected
    with pytest.raises(DeclarationError) as info:
        samples.score_json(b'{"date": "2024-04-02", "items": [{"net_mass": "12,5"}]}')
    assert str(info.value) == (
        'item 1, item.net_mass: expected a number, got "12,5" (the decimal separator is a dot)'
    )
    with pytest.raises(DeclarationError) as info:
        samples.score_json(b"[]", DAY)
    assert str(info.value) == "declaration: expected an object, got a list"


def test_scores_with_the_compiled_reader_equal_normalised_scores_with_explanations(
    samples: Engine,
) -> None:
    for raw in generated_declarations(60, seed=11):
        for explain in (True, "fired"):
            assert samples.score(raw, explain=explain) == samples.score(
                normalise_declaration(raw), explain=explain
            )
            result = samples.score_json(json.dumps(raw), explain=explain)
            assert result.to_dict() == samples.score(raw, explain=explain).to_dict()


def test_dump_json_is_the_result_as_compact_json(samples: Engine, decoder: str) -> None:
    result = samples.score(generated_declarations(1, seed=2)[0])
    assert json.loads(dump_json(result.to_dict())) == json.loads(result.to_json())
    assert dump_json({"t": "\ud800"}) == b'{"t":"\\ud800"}'  # still UTF-8


# --- batches -------------------------------------------------------------------------------------


def test_score_many_takes_data_text_and_declarations_and_rejects_in_place(samples: Engine) -> None:
    raws = generated_declarations(5, seed=9)
    batch: list[Any] = [
        raws[0],
        json.dumps(raws[1]).encode(),
        json.dumps(raws[2]),
        normalise_declaration(raws[3]),
        b'{"id": "J", "items": [',
        '{"id": "V", "date": "2024-04-02", "items": [{"net_mass": "heavy"}]}',
        b'{"id": "U", "items": []}',
    ]
    results = samples.score_many(batch)
    for k in range(4):
        assert results[k] == samples.score(raws[k])
    assert results[4] == RejectedDeclaration(
        4, None, "", None, "not valid JSON: Expecting value (line 1, column 23)"
    )
    assert results[5] == RejectedDeclaration(
        5, "V", "item.net_mass", 1, 'expected a number, got "heavy"'
    )
    assert results[6] == RejectedDeclaration(
        6, "U", "declaration.date", None, "no as-of date: give as_of or a declaration date"
    )


def test_score_many_pauses_the_collector_and_switches_it_back_on(samples: Engine) -> None:
    seen: list[bool] = []

    class Watch(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.append(gc.isenabled())
            return super().get(key, default)

    assert gc.isenabled()
    samples.score_many([Watch(date="2024-04-02", items=[])])
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()  # a program that keeps the collector off finds it off afterwards
    try:
        samples.score_many([{"date": "2024-04-02"}])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_batches_keep_the_collector_off_until_the_last_ends() -> None:
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(10)
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other batch is still running
    release.set()
    thread.join()
    assert gc.isenabled()


def test_replacing_the_set_reads_with_the_new_sets_reader() -> None:
    one = Engine.load(sources={"a.rp": _profile('item.origin in ("CN")')}, allow_drafts=True)
    raw = {"date": "2024-04-02", "items": [{"origin": "CN", "net_mass": 5}]}
    assert one.score(raw).fired
    assert "item.net_mass" not in one.profiles.reader.fields
    new_set = ProfileSet.load(sources={"a.rp": _profile("item.net_mass > 1")}, allow_drafts=True)
    one.replace(new_set)
    assert one.score(raw).fired  # net_mass is read now
    assert isinstance(one.score_many([raw])[0], ScoreResult)


def _profile(condition: str) -> str:
    return f"""
profile draft "P" {{
    indicators {{ hit: {condition} }}
    degree = 100 * hit
    controls {{ 102 "Documentary check" mandatory from 50 }}
}}
"""


def test_decimal_input_from_a_caller_is_converted_as_before(samples: Engine) -> None:
    raw = {"date": "2024-04-02", "items": [{"hs_code": "6403990000", "customs_value":
                                            Decimal("30000.50"), "net_mass": "100"}]}  # fmt: skip
    decl = samples.profiles.reader.read(raw)
    assert decl.items[0]["customs_value"] == 30000.5 and decl.items[0]["net_mass"] == 100


def test_user_catalogue_groups_in_items_and_deep_groups_read_alike() -> None:
    """Groups inside goods items and groups of groups (a user catalogue) on every path."""
    from riskengine.catalogue import Field

    extra = {
        "item.brand_owner.id": Field("item.brand_owner.id", FieldType.CODE),
        "item.brand_owner.since": Field("item.brand_owner.since", FieldType.DATE),
        "declaration.route.first.country": Field("declaration.route.first.country", FieldType.CODE),
        "declaration.route.first.days": Field(
            "declaration.route.first.days", FieldType.NUMBER, minimum=0
        ),
    }
    catalogue = Catalogue({**CATALOGUE.fields, **extra})
    reader = InputReader(catalogue, [*extra, "item.hs_code"])
    docs = [
        {"date": "2024-04-02", "route": {"first": {"country": "CN", "days": 3}},
         "items": [{"hs_code": "6403", "brand_owner": {"id": "X1", "since": "2020-01-02"}},
                   {"brand_owner": None}, {"brand_owner": {"id": None}}]},
        {"route": {"first": None}, "items": []},
        {"route": {"first": {"days": -1}}},
        {"route": {"first": "CN"}},
        {"items": [{"brand_owner": "X1"}]},
        {"items": [{"brand_owner": {"since": "2020-02-30"}}]},
    ]  # fmt: skip
    narrow = Catalogue({p: f for p, f in catalogue.fields.items() if p in reader.fields})
    for raw in docs:
        expected = outcome(lambda r=raw: normalise_declaration(r, narrow))
        assert outcome(lambda r=raw: reader.read(r)) == expected, raw
        text = json.dumps(raw)
        assert outcome(lambda t=text: reader.read_json(t)) == expected, raw
        assert outcome(lambda t=text: without_typed(reader).read_json(t)) == expected, raw
    first = reader.read_json(json.dumps(docs[0]))
    assert first.header["route.first.country"] == "CN" and first.header["route.first.days"] == 3
    assert first.items[0]["brand_owner.since"] == dt.date(2020, 1, 2)
    assert first.items[1:] == ({}, {})
    assert reader._typed is not None and reader._typed(json.dumps(docs[0])) == first


def test_random_selection_sees_id_office_and_regime_read_by_the_reader() -> None:
    """The random selection (per office and regime, keyed on the id) reads fields no profile
    reads: the reader always reads them, from data and from JSON alike."""
    from riskengine.evaluator import RandomSelection
    from riskengine.evaluator.random_selection import RandomRate

    random = RandomSelection(b"k" * 24, [RandomRate("UA100110", "40", 1.0)], rate=0.0)
    engine = Engine.load(
        sources={"a.rp": _profile('item.origin in ("CN")')}, random=random, allow_drafts=True
    )
    assert not {"declaration.office", "declaration.regime"} & {
        p for cp in engine.profiles for p in profile_fields(cp.profile, cp.fills)
    }
    raw = {"id": "D1", "date": "2024-04-02", "office": "UA100110", "regime": "40", "items": [{}]}
    for result in (engine.score(raw), engine.score_json(json.dumps(raw))):
        assert result.random_selected is True and result.declaration_id == "D1"
    other = {**raw, "regime": "10"}
    assert engine.score_json(json.dumps(other)).random_selected is False
    assert engine.score(other) == engine.score(normalise_declaration(other))


def test_replace_compiles_the_new_sets_reader_before_the_swap() -> None:
    engine = Engine.load(sources={"a.rp": _profile('item.origin in ("CN")')}, allow_drafts=True)
    new_set = ProfileSet.load(sources={"a.rp": _profile("item.net_mass > 1")}, allow_drafts=True)
    assert new_set._reader is None  # not part of loading
    engine.replace(new_set)
    assert new_set._reader is not None and "item.net_mass" in new_set._reader.fields


# --- the typed decoder's own checks and branches -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("[{"), min_size=1, max_size=600), st.sampled_from(["", " ", "\n"]))
def test_nesting_is_bounded_by_the_length_and_the_arrays(chain: list[str], space: str) -> None:
    """What ``may_nest_deeper`` rests on: the shortest JSON nesting ``a`` arrays and ``o``
    objects (an empty key per object, an empty object innermost) is ``2a + 5o - 3`` long, so
    its depth is at most ``(3a + length + 3) / 5`` for ``a`` its count of ``[``: the bound is
    reached, never passed."""
    opening = "".join("[" + space if kind == "[" else '{"":' + space for kind in chain[:-1])
    innermost = "[]" if chain[-1] == "[" else "{}"
    closing = "".join(space + ("]" if kind == "[" else "}") for kind in reversed(chain[:-1]))
    text = opening + innermost + closing
    depth, arrays = len(chain), text.count("[")
    assert 5 * depth <= 3 * arrays + len(text) + 3
    tight = chain[-1] == "{" and (space == "" or depth == 1)
    assert (5 * depth == 3 * arrays + len(text) + 3) == tight
    if depth <= 200:
        json.loads(text)  # it is JSON (the standard library reads this deep from here)
    assert inputs_typed.may_nest_deeper(len(text), arrays) == (
        3 * arrays + len(text) + 3 > 5 * inputs_typed.MAX_DEPTH
    )
    if tight:  # the bound is the depth: deeper than one less, not deeper than itself
        assert inputs_typed.may_nest_deeper(len(text), arrays, depth - 1)
        assert not inputs_typed.may_nest_deeper(len(text), arrays, depth)


def _deep(depth: int, kind: str) -> Any:
    """A value nested ``depth`` arrays or objects deep."""
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "[" else {"k": value}
    return value


def _well_typed_documents() -> list[Any]:
    """Documents the typed schema of the sample profiles accepts, some of which the checks
    before it send to the general path (nesting, digits, not ASCII)."""
    base = {"id": "D1", "date": "2024-04-02", "declarant": {"id": "X", "aeo": True},
            "items": [{"hs_code": "6403", "net_mass": 2.5}]}  # fmt: skip
    docs: list[Any] = [base]
    for depth in (100, 150, 200, 255, 256, 257, 300, 600):
        for kind in "[{":
            docs.append({**base, "x": _deep(depth, kind)})
    docs += [
        {**base, "x": "[" * 400},  # brackets in text: counted all the same (the general path)
        {**base, "x": "{" * 400},
        {**base, "x": "[" * 40 + "{" * 200},
        {**base, "x": [[0]] * 100},  # many arrays, shallow
        {**base, "x": [{"k": [1]}] * 60},
        {**base, "x": "é" * 300},  # not ASCII
        {**base, "x": 7**5000},  # more than 4,300 digits in one integer
        {**base, "x": [123456789] * 500},  # many digits, none too long
        {**base, "x": "a" * 5000},  # long, few brackets
        {**base, "items": [{"hs_code": "6403", "net_mass": 2.5, "description": "x" * 80}] * 5},
    ]
    return docs


def test_the_typed_decoder_declines_exactly_what_the_checks_send_to_the_general_path(
    samples: Engine,
) -> None:
    """The checks inline in the generated reader (``bytes``) and ``_needs_general_path``
    (``str``, ``bytearray``) decide alike; a document they pass is read by msgspec itself, one
    they stop is read by the general path, with the standard library's outcome either way."""
    reader = samples.profiles.reader
    assert reader._typed is not None
    for raw in _well_typed_documents():
        text = json.dumps(raw, ensure_ascii=False)
        for data in (text, text.encode(), bytearray(text.encode())):
            general = inputs_typed._needs_general_path(data)
            assert (reader._typed(data) is None) == general, (text[:80], type(data))
            plain = data if isinstance(data, str) else bytes(data)
            expected = outcome(lambda d=plain: reader.read(load_json(d)))
            assert outcome(lambda d=data: reader.read_json(d)) == expected
    deep = json.dumps({"x": _deep(inputs_typed.MAX_DEPTH + 1, "[")})
    shallow = json.dumps({"x": _deep(inputs_typed.MAX_DEPTH - 1, "[")})
    assert inputs_typed._needs_general_path(deep) and not inputs_typed._needs_general_path(shallow)


@pytest.mark.parametrize(
    "text",
    [
        '{"date": "2024-04-02", "date": null}',  # the last of a repeated key counts
        '{"date": null, "date": "2024-04-02"}',
        '{"declarant": {"id": "A"}, "declarant": null}',
        '{"declarant": {"id": "A"}, "declarant": {"aeo": true}}',
        '{"declarant": {"id": "A", "id": null}, "items": [{"hs_code": "1", "hs_code": "2"}]}',
        '{"declarant": null, "importer": {}, "items": null}',
        '{"items": []}',
        '{"items": [{}, {"hs_code": null}, {"net_mass": 0, "origin": "CN"}]}',
        '{"id": "D\ud800", "date": "2024-04-02"}',  # a lone surrogate in a str, not escaped
        '{"x": "\ud83d", "items": [{"hs_code": "6403"}]}',
        '{"id": "D1", "unknown": {"deep": [[[{"a": [1, 2.5, null, true, "x"]}]]]}}',
    ],
)
def test_the_typed_decoder_reads_edge_documents_as_the_standard_library(
    samples: Engine, text: str
) -> None:
    reader = samples.profiles.reader
    encoded = text.encode("utf-8", "surrogatepass")  # a surrogate: not UTF-8, refused
    for data in (text, encoded, bytearray(encoded)):
        plain = data if isinstance(data, str) else bytes(data)
        expected = outcome(lambda d=plain: reader.read(load_json(d)))
        assert outcome(lambda d=data: reader.read_json(d)) == expected
        assert outcome(lambda d=data: without_typed(reader).read_json(d)) == expected
    if text.isascii():  # well typed: msgspec reads it itself (a surrogate: the general path)
        assert reader._typed(text) is not None


def test_a_catalogue_without_declaration_id_takes_the_inputs_id_from_json() -> None:
    catalogue = Catalogue({p: f for p, f in CATALOGUE.fields.items() if p != "declaration.id"})
    reader = InputReader(catalogue, ["item.hs_code"])
    assert reader._typed is not None
    for text in ['{"id": 17, "items": []}', '{"id": "A-1"}', '{"id": {"a": [1.5, null]}}',
                 '{"id": 1e400}', '{"id": 123456789012345678901234567890}', '{"id": null}',
                 '{"id": true, "items": [{"hs_code": "6403"}]}']:  # fmt: skip
        expected = outcome(lambda t=text: reader.read(load_json(t)))
        assert outcome(lambda t=text: reader.read_json(t)) == expected
        assert outcome(lambda t=text: without_typed(reader).read_json(t)) == expected
    assert reader._typed('{"id": 17}') is not None and reader.read_json('{"id": 17}').id == "17"
