"""The load cache (riskengine/evaluator/cache.py): a set read back from the cache scores and
explains exactly as the same set loaded cold; an unreadable entry is rebuilt without an error;
another text, another catalogue or another key is a miss; a bundle is verified before the cache
is consulted, so a tampered bundle is refused whatever the cache holds."""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.gen_profiles import declarations
from riskengine import bundle as b
from riskengine.bundle.fileformat import Manifest, sha256_bytes, write_bundle
from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue
from riskengine.evaluator import Engine, ProfileSet
from riskengine.evaluator.cache import ENV, KEEP, LoadCache, resolve_cache

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "profiles"
DAY = dt.date(2024, 4, 2)


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".relc" and p.name[0] != ".")


def _sources(engine: Engine) -> list[tuple[str, str]]:
    out = []
    for cp in engine.profiles:
        for v in [cp.default, *(cp.variant(k) for k in range(len(cp.fills)))]:
            out.append((v.generated.filename, v.generated.source))
    return out


def _results(engine: Engine, decls: list[dict[str, Any]], explain: Any) -> list[str]:
    return [repr(engine.score(d, DAY, explain=explain).to_dict()) for d in decls]


@pytest.fixture(scope="module")
def decls() -> list[dict[str, Any]]:
    out = declarations(300, seed=7)
    for k, d in enumerate(out):  # offices with and without a regional fill
        d["office"] = ("UA100110", "UA500110", "UA999999")[k % 3]
    return out


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV, raising=False)
    yield


def test_a_hit_scores_and_explains_as_a_cold_load(
    tmp_path: Path, decls: list[dict[str, Any]]
) -> None:
    cold = Engine.load(SAMPLES, cache=False)
    first = Engine.load(SAMPLES, cache=tmp_path)  # a miss: loaded cold, the entry written
    assert not first.profiles.timings.cached
    assert len(_entries(tmp_path)) == 1
    hit = Engine.load(SAMPLES, cache=tmp_path)
    assert hit.profiles.timings.cached
    assert hit.profiles.timings.parse == 0.0
    assert _sources(hit) == _sources(cold)
    assert [cp.default.plan for cp in hit.profiles] == [cp.default.plan for cp in cold.profiles]
    assert any(cp.fills for cp in hit.profiles)  # the regional fills are part of the set
    for explain in (False, "fired", True):
        scored = _results(hit, decls, explain)
        assert scored == _results(cold, decls, explain)
    assert sum('"fired": []' not in r for r in scored) > 10  # the declarations fire profiles
    # the explaining functions compiled after a hit are the cold ones
    for a, c in zip(hit.profiles, cold.profiles, strict=True):
        assert a.default.explain_generated == c.default.explain_generated


def test_a_hit_on_1000_generated_profiles_gives_the_same_modules(tmp_path: Path) -> None:
    from benchmarks.gen_profiles import profile_sources

    sources = profile_sources(1000)
    cold = ProfileSet.load(sources=sources, cache=tmp_path)
    hit = ProfileSet.load(sources=sources, cache=tmp_path)
    assert hit.timings.cached and not cold.timings.cached
    assert len(hit) == len(cold) == 1000
    for a, c in zip(hit.profiles, cold.profiles, strict=True):
        assert a.default.generated == c.default.generated
        assert a.default.plan == c.default.plan


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-100] + bytes(b ^ 0xFF for b in data[-100:]),  # bytes flipped
        lambda data: b"",  # empty
        lambda data: b"not a cache entry at all",
    ],
    ids=["truncated", "flipped", "empty", "garbage"],
)
def test_a_corrupt_entry_is_rebuilt_without_an_error(
    tmp_path: Path, decls: list[dict[str, Any]], damage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    Engine.load(SAMPLES, cache=tmp_path)
    (entry,) = _entries(tmp_path)
    entry.write_bytes(damage(entry.read_bytes()))
    again = Engine.load(SAMPLES, cache=tmp_path)
    assert not again.profiles.timings.cached  # loaded cold
    assert "ignoring unreadable entry" in caplog.text or entry.stat().st_size > 0
    assert _results(again, decls[:50], False) == _results(
        Engine.load(SAMPLES, cache=False), decls[:50], False
    )
    assert Engine.load(SAMPLES, cache=tmp_path).profiles.timings.cached  # rewritten


def test_an_entry_of_another_key_is_not_used(tmp_path: Path) -> None:
    """An entry copied under another set's name (the key is also inside the entry)."""
    one = {"a.rp": (SAMPLES / "drug_precursors.rp").read_text(encoding="utf-8")}
    two = {"a.rp": (SAMPLES / "transit_diversion.rp").read_text(encoding="utf-8")}
    ProfileSet.load(sources=one, cache=tmp_path)
    (entry,) = _entries(tmp_path)
    key_two = LoadCache.key(
        "files", [("a.rp", sha256_bytes(two["a.rp"].encode()))], default_catalogue()
    )
    (tmp_path / f"{key_two}.relc").write_bytes(entry.read_bytes())
    loaded = ProfileSet.load(sources=two, cache=tmp_path)
    assert not loaded.timings.cached
    assert [cp.name for cp in loaded] == [
        cp.name for cp in ProfileSet.load(sources=two, cache=False)
    ]


def test_a_changed_text_or_catalogue_is_a_miss(tmp_path: Path) -> None:
    text = (SAMPLES / "non_declaration_mass.rp").read_text(encoding="utf-8")
    assert ProfileSet.load(sources={"m.rp": text}, cache=tmp_path).timings.cached is False
    assert ProfileSet.load(sources={"m.rp": text}, cache=tmp_path).timings.cached is True
    changed = text.replace("spheres", "spheres", 1) + "\n# a comment\n"
    assert ProfileSet.load(sources={"m.rp": changed}, cache=tmp_path).timings.cached is False
    renamed = ProfileSet.load(sources={"n.rp": text}, cache=tmp_path)  # names are in the code
    assert not renamed.timings.cached
    assert renamed.profiles[0].file == "n.rp"
    extra = Catalogue(
        {"declaration.arrival_date": Field("declaration.arrival_date", FieldType.DATE)}
    )
    other = default_catalogue().extend(extra)
    assert not ProfileSet.load(
        sources={"m.rp": text}, catalogue=other, cache=tmp_path
    ).timings.cached
    assert ProfileSet.load(sources={"m.rp": text}, catalogue=other, cache=tmp_path).timings.cached
    assert len(_entries(tmp_path)) == 4


def test_the_environment_variable_chooses_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = {"m.rp": (SAMPLES / "non_declaration_mass.rp").read_text(encoding="utf-8")}
    assert resolve_cache(None) is None  # files: no cache unless the variable is set
    ProfileSet.load(sources=text)
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    ProfileSet.load(sources=text)
    assert ProfileSet.load(sources=text).timings.cached
    assert len(_entries(tmp_path / "env")) == 1
    assert not ProfileSet.load(sources=text, cache=False).timings.cached
    monkeypatch.setenv(ENV, "off")
    assert resolve_cache(None) is None and resolve_cache(True) is None
    assert not ProfileSet.load(sources=text, cache=True).timings.cached


def test_an_unwritable_folder_loads_uncached(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    loaded = ProfileSet.load(SAMPLES, cache=blocked / "cache")
    assert len(loaded) == 9 and not loaded.timings.cached


def test_at_most_keep_entries_are_kept(tmp_path: Path) -> None:
    text = (SAMPLES / "non_declaration_mass.rp").read_text(encoding="utf-8")
    for k in range(KEEP + 3):
        ProfileSet.load(sources={f"m{k}.rp": text}, cache=tmp_path)
    assert len(_entries(tmp_path)) == KEEP
    newest = ProfileSet.load(sources={f"m{KEEP + 2}.rp": text}, cache=tmp_path)
    assert newest.timings.cached
    assert not ProfileSet.load(sources={"m0.rp": text}, cache=tmp_path).timings.cached


# --- bundles --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A key, and the catalogue members of a bundle (signed without a registry)."""
    from riskengine.bundle.build import encode_catalogue, encode_classifier

    folder = tmp_path_factory.mktemp("signed")
    private, public, ident = b.keygen(folder / "deploy.key")
    members: dict[str, bytes] = {
        "catalogue.json": encode_catalogue(default_catalogue()),
        "classifiers/reasons.json": encode_classifier(default_catalogue().reasons),
    }
    return {"folder": folder, "private": private, "public": public, "key": ident,
            "members": members}  # fmt: skip


def _bundle(signed: dict[str, Any], path: Path, texts: dict[str, str]) -> Path:
    from riskengine.syntax import parse

    members = dict(signed["members"])
    editions = []
    for name, text in texts.items():
        data = text.encode("utf-8")
        members[name] = data
        p = parse(text, name).profiles[0]
        assert p.in_force is not None
        editions.append(
            b.EditionEntry(str(p.number), name, sha256_bytes(data), sha256_bytes(data), False,
                           p.in_force.start, None)
        )  # fmt: skip
    manifest = Manifest(
        revision=3, created_at=dt.datetime(2025, 3, 1), created_by="os:x", as_of=DAY,
        key=signed["key"], log_entry=None, log_hash=None, catalogue_version=None,
        editions=tuple(editions), fills=(),
        members={k: sha256_bytes(v) for k, v in members.items()},
    )  # fmt: skip
    with path.open("wb") as stream:
        write_bundle(stream, manifest, members, b.load_private_key(signed["private"]))
    return path


def _texts() -> dict[str, str]:
    names = ("drug_precursors", "transit_diversion", "non_declaration_mass")
    return {f"profiles/{n}.rp": (SAMPLES / f"{n}.rp").read_text(encoding="utf-8") for n in names}


def test_a_bundle_hit_is_verified_first_and_scores_as_cold(
    signed: dict[str, Any], tmp_path: Path, decls: list[dict[str, Any]]
) -> None:
    path = _bundle(signed, tmp_path / "a.bundle", _texts())
    cache = tmp_path / "cache"
    cold = Engine.from_bundle(path, signed["public"], cache=False)
    Engine.from_bundle(path, signed["public"], cache=cache)
    hit = Engine.load(path, public_key=signed["public"], cache=cache)
    assert hit.profiles.timings.cached
    assert hit.bundle_revision == 3
    assert _sources(hit) == _sources(cold)
    for explain in (False, True):
        assert _results(hit, decls[:100], explain) == _results(cold, decls[:100], explain)
    # a member changed after signing: refused although the cache holds the set
    tampered = tmp_path / "tampered.bundle"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "profiles/transit_diversion.rp":
                data = data.replace(b"spheres", b"spheres ", 1)
            out.writestr(info, data)
    with pytest.raises(b.BundleError, match=re.escape("profiles/transit_diversion.rp")):
        Engine.from_bundle(tampered, signed["public"], cache=cache)


def test_a_bundle_with_another_text_is_a_miss(signed: dict[str, Any], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    texts = _texts()
    first = _bundle(signed, tmp_path / "a.bundle", texts)
    Engine.from_bundle(first, signed["public"], cache=cache)
    name = "profiles/non_declaration_mass.rp"
    texts[name] = texts[name] + "\n# amended\n"
    second = _bundle(signed, tmp_path / "b.bundle", texts)
    loaded = Engine.from_bundle(second, signed["public"], cache=cache)
    assert not loaded.profiles.timings.cached
    assert Engine.from_bundle(first, signed["public"], cache=cache).profiles.timings.cached
    assert Engine.from_bundle(second, signed["public"], cache=cache).profiles.timings.cached


def test_a_bundle_uses_the_default_folder(
    signed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _bundle(signed, tmp_path / "a.bundle", _texts())
    monkeypatch.setenv(ENV, str(tmp_path / "default"))
    Engine.load(path, public_key=signed["public"])
    assert Engine.load(path, public_key=signed["public"]).profiles.timings.cached
    assert len(_entries(tmp_path / "default")) == 1
    monkeypatch.setenv(ENV, "off")
    assert not Engine.load(path, public_key=signed["public"]).profiles.timings.cached
    assert os.environ[ENV] == "off"


def test_a_write_left_unfinished_is_removed_later(tmp_path: Path) -> None:
    """The temporary file of a write whose process was killed goes after an hour; one being
    written now stays, and neither is taken for an entry."""
    tmp_path.mkdir(exist_ok=True)
    stale, fresh = tmp_path / ".tmp-stale.relc", tmp_path / ".tmp-fresh.relc"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"half an entry")
    old = dt.datetime.now().timestamp() - 7200
    os.utime(stale, (old, old))
    text = (SAMPLES / "non_declaration_mass.rp").read_text(encoding="utf-8")
    ProfileSet.load(sources={"m.rp": text}, cache=tmp_path)
    assert not stale.exists() and fresh.exists()
    assert LoadCache(tmp_path).entries() == _entries(tmp_path)
    assert len(_entries(tmp_path)) == 1


@pytest.mark.parametrize("shape", ["sum", "and", "or", "deep"])
def test_a_wide_or_deep_expression_is_cached(tmp_path: Path, shape: str) -> None:
    """Pickling the model recurses per level of an expression: a sum of 1,000 terms (a left-
    nested chain 1,000 levels deep, which the language flattens), an and/or chain of 500
    comparisons and a degree nested 95 levels deep are cached and read back like any other."""
    from benchmarks.fuzz_cases import _template, deep_num, wide_chain, wide_sum

    slots = {
        "sum": {"degree": wide_sum(1000)},
        "and": {"ind_a": wide_chain("and", 500)},
        "or": {"ind_a": wide_chain("or", 500)},
        "deep": {"degree": deep_num("round", 95)},
    }[shape]
    sources = _template(1, **slots)
    cold = ProfileSet.load(sources=sources, cache=tmp_path, allow_drafts=True)
    assert len(_entries(tmp_path)) == 1
    hit = ProfileSet.load(sources=sources, cache=tmp_path, allow_drafts=True)
    assert hit.timings.cached
    assert hit.profiles[0].default.generated == cold.profiles[0].default.generated
