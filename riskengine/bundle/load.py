"""From a verified bundle to a compiled profile set; the checks a build runs before signing.

The members are used only after :func:`~riskengine.bundle.fileformat.read_bundle` verified the
signature and every hash. Then every text must check clean with the bundle's catalogue, each
profile member must be one approved edition (a number, the approval dates) with the number the
manifest gives it, in force on the bundle's as-of date or after it, and each fill member one
fill of a bundled edition. Only then is anything compiled.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from riskengine import model as m
from riskengine.bundle.errors import BundleError
from riskengine.bundle.fileformat import Bundle, EditionEntry, FillEntry, read_bundle
from riskengine.bundle.keys import PublicKeySource
from riskengine.catalogue import Catalogue, CatalogueError, Field, FieldType
from riskengine.classifiers import Classifier, ClassifierEntry
from riskengine.diagnostics import ProfileError
from riskengine.evaluator.cache import (
    CachedSet,
    CachedVariant,
    CacheMismatch,
    LoadCache,
    resolve_cache,
)
from riskengine.evaluator.engine import LoadTimings, ProfileSet, _check, _loading
from riskengine.evaluator.windows import Window

__all__ = ["check_members", "decode_catalogue", "decode_classifier", "load_profile_set"]


def _json(members: Mapping[str, bytes], name: str) -> Any:
    import json

    try:
        return json.loads(members[name].decode("utf-8"))
    except KeyError:
        raise BundleError(f"the bundle has no member {name}", name) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"member {name} is not JSON text: {exc}", name) from None


def decode_classifier(members: Mapping[str, bytes], name: str) -> Classifier:
    """A classifier member (``classifiers/KEY.json``)."""
    data = _json(members, name)
    try:
        entries = {str(e["code"]): ClassifierEntry(**e) for e in data["entries"]}
        return Classifier(
            key=str(data["key"]),
            title_uk=str(data["title_uk"]),
            title_en=str(data["title_en"]),
            entries=MappingProxyType(entries),
            source=str(data.get("source", "")),
        )
    except (KeyError, TypeError) as exc:
        raise BundleError(f"member {name} is not a classifier: {exc}", name) from None


def decode_catalogue(members: Mapping[str, bytes]) -> Catalogue:
    """The bundle's catalogue: its fields, and the reasons of its reason classifier."""
    data = _json(members, "catalogue.json")
    reasons = decode_classifier(members, "classifiers/reasons.json")
    try:
        fields = [Field(**{**e, "type": FieldType(e["type"])}) for e in data["fields"]]
        return Catalogue({f.path: f for f in fields}, reasons=reasons)
    except (KeyError, TypeError, ValueError, CatalogueError) as exc:
        raise BundleError(f"member catalogue.json is not a field catalogue: {exc}") from None


def _text(members: Mapping[str, bytes], name: str) -> str:
    try:
        return members[name].decode("utf-8")
    except KeyError:
        raise BundleError(f"the bundle has no member {name}", name) from None
    except UnicodeDecodeError as exc:
        raise BundleError(f"member {name} is not UTF-8 text ({exc.reason})", name) from None


def check_members(
    editions: Sequence[EditionEntry],
    fills: Sequence[FillEntry],
    members: Mapping[str, bytes],
    as_of: dt.date,
    *,
    catalogue: Catalogue | None = None,
    checked: Sequence[m.SourceFile] | None = None,
) -> tuple[list[m.SourceFile], Catalogue]:
    """The parsed and checked files of a bundle's editions and fills, and its catalogue; a
    :class:`BundleError` for anything the clearance software must not load.

    ``catalogue``: the bundle's, when already decoded; ``checked``: the files as the load cache
    kept them for these very members (parsed and checked clean before): the manifest's rules
    are still checked on them, the texts are not parsed and checked again."""
    if catalogue is None:
        catalogue = decode_catalogue(members)
    numbers = [e.number for e in editions]
    if len(set(numbers)) != len(numbers):
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        raise BundleError(f"the bundle lists edition {twice[0]} twice")
    for e in editions:
        if e.in_force_to is not None and e.in_force_to < as_of:
            raise BundleError(
                f"edition {e.number} ({e.file}) is not in force on or after the bundle's as-of "
                f"date {as_of}: it ended on {e.in_force_to}",
                e.file,
            )
        if e.in_force_to is not None and e.in_force_to < e.in_force_from:
            raise BundleError(f"edition {e.number} ends before it starts", e.file)
    texts = {e.file: _text(members, e.file) for e in editions}
    texts.update({f.file: _text(members, f.file) for f in fills})
    if checked is not None:
        files = list(checked)
        if [sf.path for sf in files] != list(texts):
            raise CacheMismatch("the cached files are not the bundle's members")
    else:
        try:
            files, _ = _check(texts, catalogue)
        except ProfileError as exc:
            raise BundleError(f"the bundle's texts do not check clean:\n{exc}") from None
    by_path = {sf.path: sf for sf in files}
    for e in editions:
        sf = by_path[e.file]
        if len(sf.profiles) != 1 or sf.fills:
            raise BundleError(f"member {e.file} is not one profile", e.file)
        profile = sf.profiles[0]
        if profile.number is None:
            raise BundleError(
                f'member {e.file} is a draft ("{profile.name}"): a bundle holds approved '
                "editions only",
                e.file,
            )
        if str(profile.number) != e.number:
            raise BundleError(
                f"member {e.file} is {profile.number}, the manifest says {e.number}", e.file
            )
        if profile.approved is None or profile.edition_approved is None:
            raise BundleError(
                f"member {e.file} ({e.number}) has no approval dates: it is not an approved "
                "edition",
                e.file,
            )
    known = set(numbers)
    for f in fills:
        sf = by_path[f.file]
        if len(sf.fills) != 1 or sf.profiles or sf.lists:
            raise BundleError(f"member {f.file} is not one regional fill", f.file)
        fill = sf.fills[0]
        if str(fill.profile) != f.number or f.number not in known or fill.office != f.office:
            raise BundleError(
                f"member {f.file} fills {fill.profile} for {fill.office}, the manifest says "
                f"{f.number} for {f.office} (an edition of the bundle)",
                f.file,
            )
    return files, catalogue


def load_profile_set(
    path: str | os.PathLike[str],
    public_key: PublicKeySource,
    *,
    use_index: bool = True,
    cache: LoadCache | str | os.PathLike[str] | bool | None = True,
) -> ProfileSet:
    """Verify, check and compile a bundle (see :meth:`ProfileSet.from_bundle`). The load
    cache is consulted only once the signature and every member's SHA-256 are verified, with a
    key of those verified hashes (:mod:`riskengine.evaluator.cache`)."""
    started = time.perf_counter()
    bundle = read_bundle(path, public_key)
    with _loading():  # the collector paused, as for a load from files
        return _load_verified(bundle, use_index, resolve_cache(cache), started)


def _load_verified(
    bundle: Bundle, use_index: bool, store: LoadCache | None, started: float
) -> ProfileSet:
    manifest = bundle.manifest
    windows = {
        e.number: Window(e.in_force_from, e.in_force_to, e.suspended) for e in manifest.editions
    }
    catalogue = decode_catalogue(bundle.members)
    key = ""
    if store is not None:
        names = [e.file for e in manifest.editions] + [f.file for f in manifest.fills]
        digests = [(name, manifest.members.get(name, "")) for name in names]
        key = LoadCache.key("bundle", digests, catalogue)
        entry = store.get(key)
        if entry is not None:
            try:
                files, _ = check_members(
                    manifest.editions, manifest.fills, bundle.members, manifest.as_of,
                    catalogue=catalogue, checked=entry.files,
                )  # fmt: skip
                return ProfileSet.compile(
                    files,
                    catalogue=catalogue,
                    use_index=use_index,
                    timings=LoadTimings(0.0, time.perf_counter() - started, 0.0),
                    windows=windows,
                    bundle_revision=manifest.revision,
                    cached=entry.variants,
                )
            except CacheMismatch:
                pass  # loaded cold below, and the entry rewritten
    files, catalogue = check_members(
        manifest.editions, manifest.fills, bundle.members, manifest.as_of, catalogue=catalogue
    )
    checked = time.perf_counter()
    record: list[CachedVariant] | None = None if store is None else []
    loaded = ProfileSet.compile(
        files,
        catalogue=catalogue,
        use_index=use_index,
        timings=LoadTimings(0.0, checked - started, 0.0),  # verifying, parsing, checking
        windows=windows,
        bundle_revision=manifest.revision,
        record=record,
    )
    if store is not None and record is not None:
        store.put(key, CachedSet(files, record))
    return loaded
