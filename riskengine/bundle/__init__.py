"""The approved-set bundle (seed 003 §8, §11.4): what reaches the clearance software.

``build`` packs, from the registry, the approved editions in force on a date or coming into
force after it (their current texts, in-force and suspension periods), the regional fills still
valid, the store's catalogue and the classifiers, with a manifest (revision, who and when, the
SHA-256 of every member) signed with Ed25519. ``read_bundle`` verifies it;
``Engine.from_bundle`` / ``Engine.load(path, public_key=…)`` verify, check and compile it and
refuse anything that is not an approved edition in force. See docs/bundle.md.
"""

from riskengine.bundle.build import ACTION, BuildResult, build
from riskengine.bundle.errors import BundleError
from riskengine.bundle.fileformat import (
    FORMAT,
    FORMAT_VERSION,
    Bundle,
    EditionEntry,
    FillEntry,
    Manifest,
    read_bundle,
    read_manifest,
)
from riskengine.bundle.keys import key_id, keygen, load_private_key, load_public_key

__all__ = [
    "ACTION",
    "FORMAT",
    "FORMAT_VERSION",
    "BuildResult",
    "Bundle",
    "BundleError",
    "EditionEntry",
    "FillEntry",
    "Manifest",
    "build",
    "key_id",
    "keygen",
    "load_private_key",
    "load_public_key",
    "read_bundle",
    "read_manifest",
]
