"""The service's bundle holder: revisions only go forward (docs/service.md, "Bundle swap")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from riskengine.bundle import keygen
from riskengine.service.bundles import BundleHolder
from tests.service_support import make_bundle, sample_texts


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundles of the sample profiles signed with one key: revisions 2, 3 and 4, and a revision
    3 without one profile (the same revision, other contents)."""
    folder = tmp_path_factory.mktemp("bundles")
    key = folder / "deploy.key"
    keygen(key)
    fewer = sample_texts()
    del fewer["2A/08/2013/00117-04"]
    return {
        "key": key,
        "2": make_bundle(folder / "r2.bundle", key, 2),
        "3": make_bundle(folder / "r3.bundle", key, 3),
        "3-fewer": make_bundle(folder / "r3-fewer.bundle", key, 3, fewer),
        "4": make_bundle(folder / "r4.bundle", key, 4),
    }


def _deploy(source: Path, live: Path) -> None:
    """Copy ``source`` next to ``live`` and rename it over it, as docs/service.md says."""
    tmp = live.with_name(live.name + ".new")
    shutil.copyfile(source, tmp)
    os.replace(tmp, live)


def test_an_older_or_changed_revision_is_refused_and_the_newer_keeps_serving(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    live = tmp_path / "live.bundle"
    _deploy(bundles["3"], live)
    refused: list[str] = []
    holder = BundleHolder(live, Path(f"{bundles['key']}.pub"), on_refused=refused.append)
    assert holder.current.revision == 3

    _deploy(bundles["2"], live)  # a stale file deployed by mistake
    assert holder.reload() is False
    assert holder.current.revision == 3
    assert (
        holder.last_error
        == refused[-1]
        == (
            f"{live}: revision 2 is older than revision 3 in use: a bundle is never rolled back "
            "(to return to an earlier set, build a new bundle from the registry)"
        )
    )
    assert holder.reload() is False and len(refused) == 1  # not tried again until it changes

    _deploy(bundles["3-fewer"], live)  # revision 3 again, with a profile less
    assert holder.reload() is False
    assert (
        holder.last_error
        == refused[-1]
        == (
            f"{live}: revision 3 is in use with other contents: a changed bundle needs a new "
            "revision"
        )
    )
    assert len(holder.current.profiles) == len(sample_texts())

    _deploy(bundles["3"], live)  # the very bundle in use, copied again (or SIGHUP): taken
    assert holder.reload() is True
    assert holder.current.revision == 3 and holder.last_error is None
    assert holder.reload(force=True) is True

    _deploy(bundles["4"], live)
    assert holder.reload() is True
    assert holder.current.revision == 4 and len(refused) == 2
