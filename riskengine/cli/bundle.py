"""``riskengine bundle keygen|build|verify|inspect``: the approved-set bundle (docs/bundle.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence

import click

from riskengine.cli.common import iso_date, plural, printable, store_url_option

__all__ = ["bundle"]


@click.group()
def bundle() -> None:
    """The approved-set bundle: keys, build from the registry, verify, inspect (docs/bundle.md)."""


@bundle.command("keygen")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The private key file to write (its public key goes to OUTPUT.pub).",
)
def keygen(output: str) -> None:
    """Create an Ed25519 key pair: the private key (mode 0600) and OUTPUT.pub."""
    from riskengine.bundle import keygen as make

    private, public, ident = make(output)
    click.echo(f"private key {private} (mode 0600): keep it where bundles are built")
    click.echo(f"public key {public}: give it to the clearance software")
    click.echo(f"key {ident}")


def _span(start: dt.date, end: dt.date | None) -> str:
    return f"{start} .. {end}" if end is not None else f"from {start}"


@bundle.command("build")
@store_url_option
@click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    callback=iso_date,
    help="Pack the editions in force on this day or later (default: today).",
)
@click.option(
    "--key",
    "key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The private key file (riskengine bundle keygen).",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The bundle file to write (replaced in one step).",
)
def build(url: str | None, as_of: dt.date | None, key: str, output: str) -> None:
    """Build and sign the bundle of the approved set from the registry of the store.

    It packs the approved editions in force on --as-of or coming into force after it (current
    texts, in-force and suspension periods), the regional fills still valid, the store's
    catalogue and the classifiers; the build is recorded in the audit log with its revision.
    """
    from riskengine.bundle import build as make
    from riskengine.store.access import open_existing

    day = as_of or dt.date.today()
    store = open_existing(url)
    try:
        done = make(store, day, key, output)
    finally:
        store.dispose()
    m = done.manifest
    click.echo(
        f"bundle revision {done.revision} written to {done.path}: "
        f"{plural(len(m.editions), 'edition')}, {plural(len(m.fills), 'regional fill')}, "
        f"as of {day} (log entry {done.log_entry}, signed by {m.key})"
    )


@bundle.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The public key file (KEYFILE.pub of riskengine bundle keygen).",
)
def verify(file: str, public_key: str) -> None:
    """Verify FILE: the signature of its manifest, every member's SHA-256, and that it holds
    approved editions in force only (what Engine.load checks). Exit status 1 names the bad
    signature or the first bad member."""
    from riskengine.bundle import BundleError, read_bundle
    from riskengine.bundle.load import check_members

    try:
        found = read_bundle(file, public_key)
        m = found.manifest
        check_members(m.editions, m.fills, found.members, m.as_of)
    except BundleError as exc:
        click.echo(printable(f"the bundle does not verify: {exc}"))
        sys.exit(1)
    click.echo(
        f"{file} verifies: revision {m.revision}, as of {m.as_of}, "
        f"{plural(len(m.editions), 'edition')}, {plural(len(m.fills), 'regional fill')}, "
        f"{plural(len(m.members), 'member')}, signed by {m.key}"
    )


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join([c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]])
        for row in rows
    ]


@bundle.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False),
    help="Verify with this public key first (without it the content is shown unverified).",
)
@click.option("--json", "as_json", is_flag=True, help="The manifest as JSON.")
def inspect(file: str, public_key: str | None, as_json: bool) -> None:
    """Show FILE's manifest: revision, who built it and when, the editions, the fills, the
    members' SHA-256."""
    from riskengine.bundle import read_bundle, read_manifest

    if public_key is not None:
        m = read_bundle(file, public_key).manifest
    else:
        m = read_manifest(file)[0]
    if as_json:
        click.echo(json.dumps({**m.to_json(), "verified": public_key is not None}, indent=2,
                              ensure_ascii=False))  # fmt: skip
        return
    state = "verified" if public_key is not None else "NOT verified (give --public-key)"
    lines = [
        f"bundle {file}: revision {m.revision}, {state}",
        f"created {m.created_at:%Y-%m-%d %H:%M:%S} UTC by {m.created_by}, as of {m.as_of}",
        f"signed by {m.key}; audit log entry {m.log_entry} ({(m.log_hash or '')[:12]})",
        f"catalogue version {m.catalogue_version if m.catalogue_version is not None else '-'}",
        "",
        f"{plural(len(m.editions), 'edition')}:",
    ]
    if m.editions:
        rows: list[tuple[str, ...]] = [("number", "in force", "suspended", "clarified", "sha256")]
        rows += [
            (
                e.number,
                _span(e.in_force_from, e.in_force_to),
                ", ".join(_span(a, b) for a, b in e.suspended) or "-",
                "yes" if e.clarified else "no",
                e.sha256[:12],
            )
            for e in m.editions
        ]
        lines += _table(rows)
    lines += ["", f"{plural(len(m.fills), 'regional fill')}:"]
    if m.fills:
        rows = [("key", "edition", "office", "order", "valid", "sha256")]
        rows += [
            (
                str(f.key),
                f.number,
                f.office,
                f"{f.order_number} of {f.order_date}" + (" (late)" if f.late else ""),
                _span(f.valid_from, f.valid_to),
                f.sha256[:12],
            )
            for f in m.fills
        ]
        lines += _table(rows)
    lines += ["", f"{plural(len(m.members), 'member')}:"]
    lines += _table([("sha256", "name")] + [(d, n) for n, d in sorted(m.members.items())])
    click.echo(printable("\n".join(lines)))
