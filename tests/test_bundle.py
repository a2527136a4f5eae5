"""The approved-set bundle: built from a registry filled through the registry's API, loaded by
the engine, scored; what it refuses (drafts, texts that are not approved editions in force,
tampered members, an edited manifest, another key); drafts refused by folder loads."""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from riskengine import bundle as b
from riskengine import registry as r
from riskengine.bundle.fileformat import MANIFEST, SIGNATURE, Manifest, sha256_bytes, write_bundle
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import DraftError, Engine, ProfileSet
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

D = dt.date
AS_OF = D(2025, 3, 1)
FOOTWEAR = "1A/12/2025/00001-01"
FOOTWEAR_02 = "1A/12/2025/00001-02"
REGIONAL_NO = "1A/20/2025/00002-01"
ENDED = "1A/12/2025/00003-01"  # terminated before AS_OF
ENDING = "1A/12/2025/00004-01"  # terminated after AS_OF


def _named(name: str) -> str:
    return DRAFT.replace("Undervalued footwear from China", name)


def _approve(store: sa.Engine, text: str, tests: str, unit: str = "12", **dates: Any) -> str:
    sub = r.submit(store, text, tests=tests, backtest_run=record_backtest(store, text))
    return r.approve(
        store,
        sub.pk,
        decision=f"EC-{sub.pk}/2025",
        decided_on=D(2025, 1, 10),
        group="1A",
        unit=unit,
        in_force_from=dates.get("start", D(2025, 2, 1)),
        in_force_to=dates.get("end", D(2026, 12, 31)),
    ).number


def populate(store: sa.Engine) -> None:
    """Footwear (clarified, suspended 2025-04-01 .. 04-14, edition 02 from 2025-07-01), a
    regional profile with a fill for UA100110 (2025-03-10 .. 06-09), a profile terminated before
    the as-of date, one terminated on 2025-05-31, and a draft only submitted."""
    footwear = _approve(store, DRAFT, TESTS)
    assert footwear == FOOTWEAR
    regional = _approve(store, REGIONAL, REGIONAL_TESTS, unit="20", end=None)
    assert regional == REGIONAL_NO
    assert _approve(store, _named("Ended footwear"), TESTS) == ENDED
    assert _approve(store, _named("Ending footwear"), TESTS) == ENDING
    r.terminate(
        store, ENDED, decision="EC-50/2025", decided_on=D(2025, 2, 20), last_day=D(2025, 2, 28)
    )
    r.terminate(
        store, ENDING, decision="EC-51/2025", decided_on=D(2025, 2, 20), last_day=D(2025, 5, 31)
    )
    with store.connect() as connection:
        approved = next(x for x in r.in_force(connection, AS_OF) if x.number == FOOTWEAR).text
    clarified = approved.replace("+380 44 000 0000", "+380 44 000 0001")
    r.clarify(store, FOOTWEAR, clarified, ground="10.2.3", reason="new phone")
    amended = clarified.replace("< 400", "< 450")
    sub = r.submit(
        store, amended, tests=TESTS, backtest_run=record_backtest(store, amended), amends=FOOTWEAR
    )
    r.amend(store, sub.pk, decision="EC-60/2025", decided_on=D(2025, 2, 25),
            in_force_from=D(2025, 7, 1))  # fmt: skip
    r.suspend(store, FOOTWEAR, ground="10.3.4", on=D(2025, 4, 1), reason="false hits")
    r.resume(store, FOOTWEAR, on=D(2025, 4, 15), reason="checked")
    r.fill(
        store,
        fill_text(REGIONAL_NO, "N-17", "2025-03-03", "2025-03-10 .. 2025-06-09"),
        responsible=["O. Kovalenko", "I. Shevchenko"],
        viewers=["Head of division"],
        entered_on=D(2025, 3, 4),
    )
    draft = _named("Only a draft")
    r.submit(store, draft, tests=TESTS, backtest_run=record_backtest(store, draft))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("bundle")
    store = new_store(f"sqlite:///{folder / 'registry.db'}")
    try:
        populate(store)
        private, public, ident = b.keygen(folder / "deploy.key")
        result = b.build(store, AS_OF, private, folder / "approved.bundle", actor="os:deployer")
        yield {
            "store": store,
            "folder": folder,
            "private": private,
            "public": public,
            "key_id": ident,
            "result": result,
            "path": folder / "approved.bundle",
        }
    finally:
        store.dispose()


def _footwear(value: float = 1000, mass: float = 10, office: str = "UA100110") -> dict[str, Any]:
    """Cheap Chinese boots (fires the footwear profiles) and a cheap fridge (fires the regional
    profile for an office with a fill)."""
    return {
        "id": "D1",
        "office": office,
        "items": [
            {"hs_code": "6403990000", "origin": "CN", "customs_value": value, "net_mass": mass},
            {"hs_code": "8418100000", "customs_value": 100, "net_mass": 10},
        ],
    }


def _fired(engine: Engine, day: dt.date, **kwargs: Any) -> list[str]:
    result = engine.score(_footwear(**kwargs), day)
    assert result.bundle_revision == engine.bundle_revision
    return [f.key for f in result.fired]


# --- what goes in, what fires -------------------------------------------------------------------


def test_the_bundle_packs_the_approved_editions_in_force_or_coming(built: dict[str, Any]) -> None:
    m = built["result"].manifest
    assert [e.number for e in m.editions] == [FOOTWEAR, FOOTWEAR_02, ENDING, REGIONAL_NO]
    assert m.revision == 1 and m.as_of == AS_OF and m.created_by == "os:deployer"
    assert m.key == built["key_id"]
    by = {e.number: e for e in m.editions}
    assert by[FOOTWEAR].clarified and by[FOOTWEAR].sha256 != by[FOOTWEAR].approved_sha256
    assert by[FOOTWEAR].in_force_to == D(2025, 6, 30)  # the amendment ended it
    assert by[FOOTWEAR].suspended == ((D(2025, 4, 1), D(2025, 4, 14)),)
    assert by[FOOTWEAR_02].suspended == by[FOOTWEAR].suspended  # suspension is the profile's
    assert by[ENDING].in_force_to == D(2025, 5, 31)  # the termination, not the text's end
    [fill] = m.fills
    assert (fill.number, fill.office, fill.order_number) == (REGIONAL_NO, "UA100110", "N-17")
    assert sorted(m.members) == [
        "catalogue.json",
        "classifiers/reasons.json",
        "classifiers/spheres.json",
        "classifiers/units.json",
        f"fills/{fill.key}.rp",
        "profiles/1A_12_2025_00001-01.rp",
        "profiles/1A_12_2025_00001-02.rp",
        "profiles/1A_12_2025_00004-01.rp",
        "profiles/1A_20_2025_00002-01.rp",
    ]
    bundle = b.read_bundle(built["path"], built["public"])
    assert "+380 44 000 0001" in bundle.text("profiles/1A_12_2025_00001-01.rp")  # current text
    with zipfile.ZipFile(built["path"]) as archive:
        assert archive.namelist()[:2] == [MANIFEST, SIGNATURE]


def test_the_build_is_an_audited_action_and_the_revision_grows(built: dict[str, Any]) -> None:
    store = built["store"]
    with store.connect() as connection:
        log = r.entries(connection)
    entry = log[built["result"].log_entry - 1]
    assert (entry.action, entry.object, entry.actor) == ("bundle", "bundle/1", "os:deployer")
    m = built["result"].manifest
    assert (m.log_entry, m.log_hash) == (entry.pk, entry.entry_hash)
    again = b.build(store, D(2025, 6, 1), built["private"], built["folder"] / "next.bundle")
    assert again.revision == 2
    assert [e.number for e in again.manifest.editions] == [FOOTWEAR, FOOTWEAR_02, REGIONAL_NO]
    assert r.verify(store).ok  # the log with its bundle entries still verifies


def test_only_approved_editions_in_force_fire_and_each_result_has_the_revision(
    built: dict[str, Any],
) -> None:
    engine = Engine.load(built["path"], public_key=built["public"])
    assert engine.bundle_revision == 1
    assert _fired(engine, D(2025, 3, 1)) == [FOOTWEAR, ENDING]  # no fill valid yet
    assert _fired(engine, D(2025, 3, 12)) == [FOOTWEAR, ENDING, REGIONAL_NO]
    # suspended 2025-04-01 .. 04-14: the footwear profile does not score
    assert _fired(engine, D(2025, 4, 1)) == [ENDING, REGIONAL_NO]
    assert _fired(engine, D(2025, 4, 14)) == [ENDING, REGIONAL_NO]
    assert _fired(engine, D(2025, 4, 15)) == [FOOTWEAR, ENDING, REGIONAL_NO]
    # terminated on 2025-05-31 although its text says 2026-12-31; the fill ends 2025-06-09
    assert _fired(engine, D(2025, 6, 1)) == [FOOTWEAR, REGIONAL_NO]
    assert _fired(engine, D(2025, 6, 10)) == [FOOTWEAR]
    assert _fired(engine, D(2025, 3, 12), office="UA300000") == [FOOTWEAR, ENDING]
    # edition 02 from 2025-07-01: 42 UAH per kg is cheap under "< 450", not under "< 400"
    first = engine.score(_footwear(value=4200, mass=10), D(2025, 6, 30))
    second = engine.score(_footwear(value=4200, mass=10), D(2025, 7, 1))
    assert [(f.key, f.degree) for f in first.fired] == [(FOOTWEAR, 60.0)]
    assert [(f.key, f.degree) for f in second.fired] == [(FOOTWEAR_02, 100.0)]
    assert second.bundle_revision == 1 and second.to_dict()["bundle_revision"] == 1
    assert '"bundle_revision": 1' in second.to_json()
    assert _fired(engine, D(2027, 1, 1)) == []
    keys = {cp.key for cp in engine.profiles}
    assert ENDED not in keys and not any("draft" in k.lower() for k in keys)
    explained = engine.score(_footwear(), D(2025, 4, 5), explain=True)
    assert explained.bundle_revision == 1
    assert FOOTWEAR not in [e.key for e in explained.explanations]  # not in force: suspended


def test_engine_replace_swaps_to_a_newer_revision(built: dict[str, Any]) -> None:
    engine = Engine.from_bundle(built["path"], built["public"])
    newer = b.build(built["store"], AS_OF, built["private"], built["folder"] / "newer.bundle")
    engine.replace(ProfileSet.from_bundle(newer.path, built["public"]))
    assert engine.score(_footwear(), D(2025, 3, 12)).bundle_revision == newer.revision > 1


def test_a_public_key_can_be_given_as_bytes_or_a_key(built: dict[str, Any]) -> None:
    raw = Path(built["public"]).read_bytes()
    assert Engine.load(built["path"], public_key=raw).bundle_revision == 1
    key = b.load_public_key(raw)
    assert ProfileSet.from_bundle(built["path"], key).bundle_revision == 1


# --- keys -------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    private, public, ident = b.keygen(tmp_path / "k")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert public == tmp_path / "k.pub" and b"PUBLIC KEY" in public.read_bytes()
    assert ident.startswith("ed25519:") and len(ident) == len("ed25519:") + 16
    with pytest.raises(b.BundleError, match="exists: a key is never overwritten"):
        b.keygen(tmp_path / "k")
    with pytest.raises(b.BundleError, match=r"that is the private key: give the \.pub file"):
        b.load_public_key(private)


# --- tampering --------------------------------------------------------------------------------


def _rezip(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing (or, with None, removing) members; adds the new ones."""
    with zipfile.ZipFile(source) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _refused(path: Path, public: Path) -> str:
    with pytest.raises(b.BundleError) as info:
        b.read_bundle(path, public)
    with pytest.raises(b.BundleError) as loading:
        Engine.load(path, public_key=public)
    assert str(loading.value) == str(info.value)
    return str(info.value)


def test_a_changed_member_is_named(built: dict[str, Any], tmp_path: Path) -> None:
    member = "profiles/1A_12_2025_00001-01.rp"
    text = b.read_bundle(built["path"], built["public"]).members[member]
    bad = tmp_path / "bad.bundle"
    _rezip(built["path"], bad, {member: text.replace(b"< 400", b"< 900")})
    message = _refused(bad, built["public"])
    assert f"member {member} does not match its SHA-256 in the manifest" in message


def test_a_byte_flipped_in_the_file_is_named(built: dict[str, Any], tmp_path: Path) -> None:
    data = bytearray(Path(built["path"]).read_bytes())
    with zipfile.ZipFile(built["path"]) as archive:
        info = archive.getinfo("catalogue.json")
    # the member's compressed data starts after its local header (30 bytes, name, extra)
    at = info.header_offset + 30 + len(info.filename) + 40
    data[at] ^= 0xFF
    bad = tmp_path / "flipped.bundle"
    bad.write_bytes(bytes(data))
    message = _refused(bad, built["public"])
    assert "member catalogue.json" in message


def test_an_added_or_removed_member_is_named(built: dict[str, Any], tmp_path: Path) -> None:
    extra = tmp_path / "extra.bundle"
    _rezip(built["path"], extra, {"profiles/zz.rp": b'profile draft "Z" {}\n'})
    assert "member profiles/zz.rp is not listed in the manifest" in _refused(extra, built["public"])
    missing = tmp_path / "missing.bundle"
    _rezip(built["path"], missing, {"classifiers/units.json": None})
    assert "member classifiers/units.json is missing" in _refused(missing, built["public"])


def test_an_edited_manifest_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    with zipfile.ZipFile(built["path"]) as archive:
        manifest = archive.read(MANIFEST)
    edited = manifest.replace(b'"2025-04-14"', b'"2025-04-02"')  # shorten the suspension
    assert edited != manifest
    bad = tmp_path / "edited.bundle"
    _rezip(built["path"], bad, {MANIFEST: edited})
    message = _refused(bad, built["public"])
    assert "the signature of manifest.json does not verify with the public key" in message


def test_another_key_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    _, other, ident = b.keygen(tmp_path / "other")
    message = _refused(built["path"], other)
    assert f"does not verify with the public key {ident}" in message
    assert "signed with another key" in message


def test_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "x.bundle"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(b.BundleError, match="is not a bundle"):
        b.read_bundle(path, b"\0" * 32)


# --- what a correctly signed bundle may still not hold -----------------------------------------


def _signed(
    built: dict[str, Any], tmp_path: Path, *, texts: dict[str, str], in_force_to: dt.date | None
) -> Path:
    """A bundle signed with the right key holding ``texts`` as editions (by file name)."""
    source = b.read_bundle(built["path"], built["public"])
    members = {k: v for k, v in source.members.items() if not k.startswith(("profiles/", "fills/"))}
    editions = []
    for name, text in texts.items():
        data = text.encode("utf-8")
        members[name] = data
        editions.append(
            b.EditionEntry(
                FOOTWEAR, name, sha256_bytes(data), sha256_bytes(data), False, D(2025, 2, 1),
                in_force_to,
            )
        )  # fmt: skip
    manifest = Manifest(
        revision=9, created_at=dt.datetime(2025, 3, 1), created_by="os:x", as_of=AS_OF,
        key=built["key_id"], log_entry=None, log_hash=None, catalogue_version=None,
        editions=tuple(editions), fills=(),
        members={k: sha256_bytes(v) for k, v in members.items()},
    )  # fmt: skip
    path = tmp_path / "signed.bundle"
    with path.open("wb") as stream:
        write_bundle(stream, manifest, members, b.load_private_key(built["private"]))
    return path


def test_a_signed_draft_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    path = _signed(built, tmp_path, texts={"profiles/d.rp": DRAFT}, in_force_to=None)
    message = _refused_load(path, built["public"])
    assert 'member profiles/d.rp is a draft ("Undervalued footwear from China")' in message


def test_an_edition_no_longer_in_force_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    text = b.read_bundle(built["path"], built["public"]).text("profiles/1A_12_2025_00001-01.rp")
    path = _signed(built, tmp_path, texts={"profiles/a.rp": text}, in_force_to=D(2025, 2, 27))
    message = _refused_load(path, built["public"])
    assert "is not in force on or after the bundle's as-of date 2025-03-01" in message
    fine = _signed(built, tmp_path, texts={"profiles/a.rp": text}, in_force_to=None)
    assert Engine.load(fine, public_key=built["public"]).bundle_revision == 9


def test_a_text_without_approval_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    text = b.read_bundle(built["path"], built["public"]).text("profiles/1A_12_2025_00001-01.rp")
    unapproved = "\n".join(line for line in text.splitlines() if "approved 2025-01-10" not in line)
    path = _signed(built, tmp_path, texts={"profiles/a.rp": unapproved}, in_force_to=None)
    message = _refused_load(path, built["public"])
    # the checks themselves refuse a numbered text without its approval date (RE130)
    assert message.startswith("the bundle's texts do not check clean:\nprofiles/a.rp:")
    assert "error[RE130]: approved profile 1A/12/2025/00001-01 has no" in message


def _refused_load(path: Path, public: Path) -> str:
    with pytest.raises(b.BundleError) as info:
        Engine.load(path, public_key=public)
    return str(info.value)


# --- folders: development only -----------------------------------------------------------------


def test_a_folder_with_a_draft_is_refused_unless_drafts_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "first.rp").write_text("\n" + DRAFT.split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(DraftError) as info:
        Engine.load(tmp_path)
    message = str(info.value)
    assert message.startswith(
        f'{tmp_path / "first.rp"}:2: profile draft "Undervalued footwear from China" is a draft '
        "(no number): a draft is scored only for development — pass allow_drafts=True"
    )
    assert info.value.drafts == (
        (str(tmp_path / "first.rp"), 2, "Undervalued footwear from China"),
    )
    with pytest.raises(DraftError):
        ProfileSet.load(sources={"x.rp": DRAFT})
    engine = Engine.load(tmp_path, allow_drafts=True)
    result = engine.score(_footwear(), D(2025, 3, 1))
    assert [f.key for f in result.fired] == ["Undervalued footwear from China"]
    assert result.bundle_revision is None and result.to_dict()["bundle_revision"] is None


def test_a_bundle_given_as_profile_files_is_named(built: dict[str, Any]) -> None:
    with pytest.raises(RiskEngineError, match="is a bundle, not a profile file: load it with its"):
        Engine.load(built["path"])
    with pytest.raises(RiskEngineError, match="give only the bundle's path and its public key"):
        Engine.load(built["path"], public_key=built["public"], allow_drafts=True)


# --- refusals of the build ---------------------------------------------------------------------


def test_a_registry_whose_log_does_not_verify_builds_no_bundle(tmp_path: Path) -> None:
    store = new_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        _approve(store, DRAFT, TESTS)
        with store.begin() as connection:
            connection.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            connection.execute(sa.text("UPDATE audit_log SET actor = 'os:mallory' WHERE pk = 1"))
        private, _, _ = b.keygen(tmp_path / "k")
        with pytest.raises(b.BundleError) as info:
            b.build(store, AS_OF, private, tmp_path / "x.bundle")
        assert str(info.value).startswith(
            "the registry's audit log does not verify (entry 1 (submit profile/1) was edited"
        )
        assert not (tmp_path / "x.bundle").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.bundle")]
        with store.connect() as connection:
            assert [e.action for e in r.entries(connection)] == ["submit", "approve"]
    finally:
        store.dispose()


def test_build_and_load_on_every_backend(db_url: str, tmp_path: Path) -> None:
    store = new_store(db_url)
    try:
        _approve(store, DRAFT, TESTS)
        private, public, _ = b.keygen(tmp_path / "k")
        first = b.build(store, AS_OF, private, tmp_path / "a.bundle")
        second = b.build(store, AS_OF, private, tmp_path / "a.bundle")
        assert (first.revision, second.revision) == (1, 2)
        engine = Engine.load(tmp_path / "a.bundle", public_key=public)
        result = engine.score(_footwear(), D(2025, 3, 1))
        assert [f.key for f in result.fired] == [FOOTWEAR] and result.bundle_revision == 2
        assert r.verify(store).ok
    finally:
        store.dispose()


def test_the_same_content_gives_the_same_members(built: dict[str, Any], tmp_path: Path) -> None:
    one = b.read_bundle(built["path"], built["public"])
    key = Ed25519PrivateKey.generate()
    buffer = io.BytesIO()
    write_bundle(buffer, one.manifest, one.members, key)
    with zipfile.ZipFile(buffer) as archive:
        assert {n: archive.read(n) for n in one.members} == dict(one.members)
        signature = base64.b64decode(archive.read(SIGNATURE))
    key.public_key().verify(signature, one.manifest.encode())
