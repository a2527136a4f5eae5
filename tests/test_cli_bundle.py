"""``riskengine bundle keygen|build|verify|inspect`` and ``riskengine score --bundle``, as a user
sees them: output lines, exit statuses, files written, refusals."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from riskengine.cli import cli
from tests.registry_support import new_store
from tests.test_bundle import ENDING, FOOTWEAR, FOOTWEAR_02, REGIONAL_NO, populate


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("cli_bundle")
    url = f"sqlite:///{folder / 'registry.db'}"
    store = new_store(url)
    try:
        populate(store)
    finally:
        store.dispose()
    keygen = run("bundle", "keygen", "-o", folder / "deploy.key")
    assert keygen.exit_code == 0, keygen.output
    built = run(
        "bundle", "build", "--db", url, "--as-of", "2025-03-01", "--key", folder / "deploy.key",
        "-o", folder / "approved.bundle",
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    yield {
        "folder": folder,
        "db": Path(url.removeprefix("sqlite:///")),
        "key": folder / "deploy.key",
        "pub": folder / "deploy.key.pub",
        "bundle": folder / "approved.bundle",
        "keygen": keygen.output,  # type: ignore[dict-item]
        "build": built.output,  # type: ignore[dict-item]
    }


def test_keygen_prints_the_files_and_the_key(registry: dict[str, Any]) -> None:
    lines = registry["keygen"].splitlines()
    assert lines[0] == f"private key {registry['key']} (mode 0600): keep it where bundles are built"
    assert lines[1] == f"public key {registry['pub']}: give it to the clearance software"
    assert lines[2].startswith("key ed25519:")
    assert stat.S_IMODE(os.stat(registry["key"]).st_mode) == 0o600
    again = run("bundle", "keygen", "-o", registry["key"])
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: {registry['key']} exists: a key is never overwritten; choose another name\n"
    )


def test_build_prints_the_revision_and_what_it_packs(registry: dict[str, Any]) -> None:
    key = registry["keygen"].splitlines()[2].removeprefix("key ")
    assert registry["build"] == (
        f"bundle revision 1 written to {registry['bundle']}: 4 editions, 1 regional fill, as of "
        f"2025-03-01 (log entry 18, signed by {key})\n"
    )
    log = run("registry", "log", "--db", registry["db"])
    last = log.output.splitlines()[17]
    assert ' bundle bundle/1 as_of="2025-03-01" editions=[' in last
    assert last.endswith("revision=1")
    assert run("registry", "verify", "--db", registry["db"]).output == (
        "the log verifies: 18 entries\n"
    )


def test_build_refusals(registry: dict[str, Any], tmp_path: Path) -> None:
    no_key = run("bundle", "build", "--db", registry["db"], "-o", tmp_path / "x.bundle")
    assert no_key.exit_code == 2 and "Missing option '--key'" in no_key.output
    bad_date = run(
        "bundle", "build", "--db", registry["db"], "--as-of", "2025-13-01", "--key",
        registry["key"], "-o", tmp_path / "x.bundle",
    )  # fmt: skip
    assert bad_date.exit_code == 2
    no_store = run(
        "bundle", "build", "--db", tmp_path / "none.db", "--key", registry["key"], "-o",
        tmp_path / "x.bundle",
    )  # fmt: skip
    assert no_store.exit_code == 1
    assert "has no riskengine tables: run `riskengine db init`" in no_store.stderr
    public_as_private = run(
        "bundle", "build", "--db", registry["db"], "--key", registry["pub"], "-o",
        tmp_path / "x.bundle",
    )  # fmt: skip
    assert public_as_private.exit_code == 1
    assert "is not an unencrypted PEM private key" in public_as_private.stderr
    assert not list(tmp_path.glob("*.bundle")) and not (tmp_path / "none.db").exists()


def test_verify(registry: dict[str, Any], tmp_path: Path) -> None:
    ok = run("bundle", "verify", registry["bundle"], "--public-key", registry["pub"])
    assert ok.exit_code == 0
    assert ok.output.startswith(
        f"{registry['bundle']} verifies: revision 1, as of 2025-03-01, 4 editions, 1 regional "
        "fill, 9 members, signed by ed25519:"
    )
    member = "profiles/1A_12_2025_00001-01.rp"
    with zipfile.ZipFile(registry["bundle"]) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members[member] = members[member].replace(b"< 400", b"< 401")
    bad = tmp_path / "bad.bundle"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    refused = run("bundle", "verify", bad, "--public-key", registry["pub"])
    assert refused.exit_code == 1
    assert refused.output == (
        f"the bundle does not verify: {bad}: member {member} does not match its SHA-256 in the "
        "manifest: it was changed after signing\n"
    )
    run("bundle", "keygen", "-o", tmp_path / "other")
    other = run("bundle", "verify", registry["bundle"], "--public-key", tmp_path / "other.pub")
    assert other.exit_code == 1
    assert "the signature of manifest.json does not verify with the public key" in other.output
    missing = run("bundle", "verify", registry["bundle"])
    assert missing.exit_code == 2 and "Missing option '--public-key'" in missing.output


def test_inspect_as_text_and_json(registry: dict[str, Any]) -> None:
    shown = run("bundle", "inspect", registry["bundle"])
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert lines[0] == f"bundle {registry['bundle']}: revision 1, NOT verified (give --public-key)"
    assert re.fullmatch(
        r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by os:\S+, as of 2025-03-01", lines[1]
    )
    assert re.fullmatch(
        r"signed by ed25519:[0-9a-f]{16}; audit log entry 18 \([0-9a-f]{12}\)", lines[2]
    )
    assert "4 editions:" in lines
    row = next(line for line in lines if line.strip().startswith(FOOTWEAR + " "))
    assert "2025-02-01 .. 2025-06-30" in row and "2025-04-01 .. 2025-04-14" in row
    assert " yes " in row  # clarified
    assert "1 regional fill:" in lines and "9 members:" in lines
    assert any("N-17 of 2025-03-03" in line and "UA100110" in line for line in lines)
    data = json.loads(run("bundle", "inspect", registry["bundle"], "--json").output)
    assert data["revision"] == 1 and data["verified"] is False
    assert [e["number"] for e in data["editions"]] == [FOOTWEAR, FOOTWEAR_02, ENDING, REGIONAL_NO]
    assert data["editions"][0]["suspended"] == [["2025-04-01", "2025-04-14"]]
    verified = run(
        "bundle", "inspect", registry["bundle"], "--json", "--public-key", registry["pub"]
    )
    assert json.loads(verified.output)["verified"] is True


def _declaration(folder: Path, date: str) -> Path:
    item = {"hs_code": "6403990000", "origin": "CN", "customs_value": 1000, "net_mass": 10}
    path = folder / f"d-{date}.json"
    path.write_text(
        json.dumps({"id": "D1", "date": date, "office": "UA100110", "items": [item]}),
        encoding="utf-8",
    )
    return path


def test_score_with_a_bundle(registry: dict[str, Any], tmp_path: Path) -> None:
    args = ["--bundle", registry["bundle"], "--public-key", registry["pub"]]
    scored = run("score", _declaration(tmp_path, "2025-03-12"), *args)
    assert scored.exit_code == 0, scored.output
    assert scored.stderr == ""  # no draft, no note
    data = json.loads(scored.stdout)
    assert data["bundle_revision"] == 1
    assert [f["key"] for f in data["fired"]] == [FOOTWEAR, ENDING]
    suspended = json.loads(run("score", _declaration(tmp_path, "2025-04-05"), *args).stdout)
    assert [f["key"] for f in suspended["fired"]] == [ENDING]
    table = run("score", _declaration(tmp_path, "2025-03-12"), *args, "--format", "table")
    assert table.stdout.startswith("declaration D1 on 2025-03-12: lane red (bundle revision 1)\n")
    batch = run("score", *args, stdin=_declaration(tmp_path, "2025-03-12").read_text() + "\n")
    assert json.loads(batch.stdout)["bundle_revision"] == 1


def test_score_options_go_together(registry: dict[str, Any], tmp_path: Path) -> None:
    decl = _declaration(tmp_path, "2025-03-12")
    alone = run("score", decl, "--bundle", registry["bundle"])
    assert alone.exit_code == 2 and "--bundle and --public-key go together" in alone.output
    both = run(
        "score", decl, "--bundle", registry["bundle"], "--public-key", registry["pub"],
        "--profiles", tmp_path,
    )  # fmt: skip
    assert both.exit_code == 2 and "give --profiles (files or folders) or --bundle" in both.output
    as_profiles = run("score", decl, "--profiles", registry["bundle"])
    assert as_profiles.exit_code == 1
    assert "is a bundle, not a profile file: load it with its public key" in as_profiles.stderr
