"""What scoring gives back: lanes and their configuration, the result of one declaration, a
rejected declaration of a batch. Split from :mod:`riskengine.evaluator.engine`, which re-exports
them."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from riskengine import model as m
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator.compiled import ControlForm, FiredProfile
from riskengine.evaluator.explain import ProfileExplanation
from riskengine.evaluator.making import slotted_maker

__all__ = [
    "DEFAULT_RED",
    "DEFAULT_YELLOW",
    "Lane",
    "LaneConfig",
    "RejectedDeclaration",
    "ScoreResult",
]


class Lane(enum.Enum):
    """The channel a declaration goes to: red (physical inspection), yellow (documents only),
    green (no control)."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"

    def __str__(self) -> str:
        return self.value


#: Procedure codes that mean a physical control (inspection, scanning, weighing, sampling).
DEFAULT_RED = frozenset({"201", "202", "203", "204", "301", "302"})
#: Procedure codes that mean documents only (documentary checks, verifications, requests,
#: notification of a rights holder, escort).
DEFAULT_YELLOW = frozenset({"101", "102", "103", "104", "105", "106", "401", "501"})


def _codes(value: Iterable[str]) -> frozenset[str]:
    return frozenset(str(v) for v in value)


@attrs.frozen
class LaneConfig:
    """Which procedure codes send a declaration to which lane.

    The lane is red when any combined control's code is in ``red``, else yellow when any is in
    ``yellow`` (or is in neither list: it then counts as ``unknown``), else green (no control).
    With ``count_if_necessary`` false, "if necessary" controls do not raise the lane.
    """

    red: frozenset[str] = attrs.field(default=DEFAULT_RED, converter=_codes)
    yellow: frozenset[str] = attrs.field(default=DEFAULT_YELLOW, converter=_codes)
    unknown: Lane = Lane.YELLOW
    count_if_necessary: bool = True

    def lane(self, controls: Iterable[ControlForm]) -> Lane:
        """The lane of a declaration with these combined control forms."""
        lane = Lane.GREEN
        for form in controls:
            if not self.count_if_necessary and form.kind is m.ControlKind.IF_NECESSARY:
                continue
            if form.code in self.red:
                return Lane.RED
            if form.code in self.yellow:
                lane = Lane.YELLOW
            elif self.unknown is Lane.RED:
                return Lane.RED
            elif self.unknown is Lane.YELLOW:
                lane = Lane.YELLOW
        return lane

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LaneConfig:
        """From a mapping like the ``[lanes]`` table: ``red``, ``yellow`` (lists of codes),
        ``unknown`` ("red" / "yellow" / "green"), ``count_if_necessary`` (bool)."""
        known = {"red", "yellow", "unknown", "count_if_necessary"}
        extra = sorted(set(data) - known)
        if extra:
            raise RiskEngineError(f"unknown lane setting {extra[0]!r} (known: {sorted(known)})")
        kwargs: dict[str, Any] = {}
        for key in ("red", "yellow"):
            if key in data:
                value = data[key]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise RiskEngineError(f"lanes.{key} must be a list of procedure codes")
                kwargs[key] = frozenset(value)
        if "unknown" in data:
            try:
                kwargs["unknown"] = Lane(data["unknown"])
            except ValueError:
                raise RiskEngineError("lanes.unknown must be red, yellow or green") from None
        if "count_if_necessary" in data:
            if not isinstance(data["count_if_necessary"], bool):
                raise RiskEngineError("lanes.count_if_necessary must be true or false")
            kwargs["count_if_necessary"] = data["count_if_necessary"]
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> LaneConfig:
        """From a TOML file with a ``[lanes]`` table (or the settings at the top level)."""
        try:
            with open(path, "rb") as stream:
                data = tomllib.load(stream)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RiskEngineError(
                f"{os.fspath(path)}: cannot read the lane settings: {exc}"
            ) from None
        table = data.get("lanes", data)
        if not isinstance(table, Mapping):
            raise RiskEngineError(f"{os.fspath(path)}: [lanes] must be a table")
        return cls.from_mapping(table)


@attrs.frozen
class ScoreResult:
    """The result of scoring one declaration on one date.

    ``fired``: every profile that fired, in profile-set order. ``controls``: the union of their
    control forms, one per procedure code with the strongest kind, sorted by code. ``lane``: from
    the lane configuration. ``explanations``: with ``explain=True``, one per profile in force
    (fired or not, regional profiles without a fill included); with ``explain="fired"``, one per
    fired profile; otherwise empty. ``bundle_revision``: the revision of the signed bundle the
    set was loaded from (docs/bundle.md), ``None`` for a set loaded from files.

    ``random_selected``: with a random selection configured (``Engine(random=...)``), whether
    the declaration was chosen for a random control (its lane then raised to the random lane);
    ``None`` when the engine has no random selection.
    """

    declaration_id: str | None
    as_of: dt.date
    fired: tuple[FiredProfile, ...]
    controls: tuple[ControlForm, ...]
    lane: Lane
    explanations: tuple[ProfileExplanation, ...] = ()
    random_selected: bool | None = None
    bundle_revision: int | None = None

    @property
    def selected(self) -> bool:
        """Whether at least one profile fired."""
        return bool(self.fired)

    def to_dict(self, *, explanations: bool | None = None) -> dict[str, Any]:
        """The result as JSON-ready data (what ``riskengine score`` prints): ``id``, ``as_of``
        (ISO date), ``bundle_revision`` (``None`` unless loaded from a bundle), ``selected``,
        ``lane``, the combined ``controls`` and every ``fired``
        profile (key, number, name, degree, controls, message, items); with explanations, a list
        ``explanations`` (key, applies, fired, the rendered ``text``). ``explanations``:
        ``None`` (default) adds them when the result has any, ``True``/``False`` always/never.
        ``random_selected`` is there when the engine has a random selection."""
        fired = self.fired
        as_of = self.as_of
        day = _ISO_DAYS.get(as_of)
        if day is None:
            if len(_ISO_DAYS) >= 4096:
                _ISO_DAYS.clear()
            day = _ISO_DAYS[as_of] = as_of.isoformat()
        record: dict[str, Any] = {
            "id": self.declaration_id,
            "as_of": day,
            "bundle_revision": self.bundle_revision,
            "selected": bool(fired),
            "lane": self.lane.value,
            "controls": [_control(c) for c in self.controls] if self.controls else [],
            "fired": [
                {
                    "key": f.key,
                    "number": f.number,
                    "name": f.name,
                    "degree": f.degree,
                    "controls": [_control(c) for c in f.controls],
                    "message": f.message,
                    "items": list(f.items),
                }
                for f in fired
            ]
            if fired
            else [],
        }
        if self.random_selected is not None:
            record["random_selected"] = self.random_selected
        if explanations or (explanations is None and self.explanations):
            record["explanations"] = [
                {"key": e.key, "applies": e.applies, "fired": e.fired, "text": e.render()}
                for e in self.explanations
            ]
        return record

    def to_json(self, *, explanations: bool | None = None, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text (UTF-8 characters kept as they are)."""
        return json.dumps(self.to_dict(explanations=explanations), ensure_ascii=False,
                          indent=indent)  # fmt: skip


#: ``make_result(declaration_id, as_of, fired, controls, lane, explanations, random_selected,
#: bundle_revision)``: a :class:`ScoreResult`, made faster than by its initialiser (the engine
#: makes one per declaration; :mod:`riskengine.evaluator.making`).
make_result: Callable[..., ScoreResult] = slotted_maker(ScoreResult)


#: ISO texts of the scoring dates seen (a handful in practice), for :meth:`ScoreResult.to_dict`.
_ISO_DAYS: dict[dt.date, str] = {}


def _control(form: ControlForm) -> dict[str, str]:
    return {"code": form.code, "name": form.name, "kind": form.kind.value}


@attrs.frozen
class RejectedDeclaration:
    """A declaration of a batch that could not be scored: its position in the batch (0-based),
    its id when known, and the field (empty when the problem is not one field's), item number
    and reason of the problem."""

    position: int
    declaration_id: str | None
    field: str
    item: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        if self.item is not None:
            where = f"item {self.item}, {where}"
        return f"declaration #{self.position} ({self.declaration_id or 'no id'}): {where}" + (
            self.reason
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``rejected`` (true), ``position``, ``id``, ``field``, ``item``,
        ``reason``."""
        return {
            "rejected": True,
            "position": self.position,
            "id": self.declaration_id,
            "field": self.field,
            "item": self.item,
            "reason": self.reason,
        }
