"""Random lifecycles of registry profiles by random users with random roles (hypothesis state
machine).

Invariants after every step: at most one edition of a profile in force on any date; profile
numbers and sequence numbers unique; an approved text never changes (its hash as first seen);
every successful action is one log entry by its actor, a refused one writes nothing; the chain
verifies; no role ever does what it may not (an oracle of the rights, kept by the machine beside
the store, decides every outcome: allowed actions are never refused for the role, others always
are); retention holds (a case file's rows never disappear, unless purged more than 3 years after
the profile's termination)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from typing import Any

import hypothesis.strategies as st
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from riskengine import registry as r
from riskengine.registry.admin import kept_until, today
from riskengine.registry.lifecycle import sha256
from riskengine.registry.state import table
from tests.registry_support import (
    DRAFT,
    REGIONAL,
    REGIONAL_TESTS,
    TESTS,
    fill_text,
    new_store,
    record_backtest,
)

# terminations fall from 2022 to 2026, so some case files are past retention (3 years) today
START = dt.date(2022, 6, 1)
NAMES = ("Undervalued footwear from China", "Second profile", "Third profile")
ADMIN = "os:admin"
USERS = ("os:ann", "os:bob", "os:cid", "os:dan")
ROLES = ("risk_unit_head", "secretary", "office_filler", "auditor", "analyst")
OFFICES = ("UA100110", "UA500000")
days = st.integers(min_value=-20, max_value=400)
ends = st.integers(min_value=-20, max_value=1500)
lags = st.integers(min_value=-3, max_value=20)  # in force from, after the decision
users = st.sampled_from(USERS)
# each action's natural holder (granted at the start) acts more often than the others
heads = st.sampled_from(("os:ann", "os:ann", "os:ann", *USERS))
secretaries = st.sampled_from(("os:bob", "os:bob", "os:bob", *USERS))
fillers = st.sampled_from(("os:cid", "os:cid", "os:cid", *USERS))
CASE_FILE = (
    "profile_submissions",
    "commission_decisions",
    "profile_editions",
    "profile_suspensions",
    "regional_fills",
)


def _day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


def _draft(name: str, floor: int) -> str:
    return DRAFT.replace("Undervalued footwear from China", name).replace("< 400", f"< {floor}")


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="registry-machine-")
        self.store = new_store(f"sqlite:///{os.path.join(self.folder, 'store.db')}")
        self.done: list[tuple[str, str]] = []  # (action, actor) of every successful action
        self.texts: dict[int, str] = {}  # edition key -> hash of its approved text, first seen
        self.rights: set[tuple[str, str, str | None]] = set()  # the oracle: (actor, role, office)
        self.rows: dict[int, int] = {}  # profile key -> case-file rows last seen
        self.purged: set[int] = set()

    def teardown(self) -> None:
        self.store.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers
    def _may(self, actor: str, name: str, office: str | None) -> bool:
        """The oracle: the rights as the machine granted them (docs/registry.md's table)."""
        if not self.rights:  # no members: the single local user may do everything
            return True
        role = r.RIGHTS[name]
        return any(
            a == actor and x == role and (office is None or o == office) for a, x, o in self.rights
        )

    def _try(
        self, name: str, actor: str, call: Any, *args: Any, scope: str | None = None, **kw: Any
    ) -> Any:
        """Call the action; ``scope`` is the office the oracle checks the right for."""
        before = len(self._log())
        allowed = self._may(actor, name, scope)
        try:
            result = call(self.store, *args, actor=actor, **kw)
        except r.RegistryError as exc:
            assert len(self._log()) == before, f"a refused {name} wrote to the log"
            for_role = str(exc).startswith(f"{actor} may not {name}: it needs the role")
            assert for_role != allowed, (actor, name, scope, self.rights, str(exc))
            return None
        assert allowed, f"{actor} did {name} without the role ({self.rights})"
        self.done.append((name, actor))
        return result

    # -- members
    @initialize(roles=st.lists(st.sampled_from(ROLES), min_size=4, max_size=4))
    def members(self, roles: list[str]) -> None:
        self._try_grant(ADMIN, ADMIN, "admin", None)
        # ann starts as the risk unit, bob as the commission, cid as a filler, dan at random
        start = ["risk_unit_head", "secretary", "office_filler", roles[3]]
        for user, role in zip(USERS, start, strict=True):
            self._try_grant(ADMIN, user, role, OFFICES[0] if role == "office_filler" else None)

    def _try_grant(self, actor: str, user: str, role: str, office: str | None) -> None:
        if self._try("grant", actor, r.grant, user, role, office=office):
            self.rights.add((user, role, office))

    @rule(by=st.sampled_from((ADMIN, ADMIN, ADMIN, *USERS)), user=users,
          role=st.sampled_from(ROLES), office=st.sampled_from(OFFICES))  # fmt: skip
    def grant(self, by: str, user: str, role: str, office: str) -> None:
        held = office if role == "office_filler" else None
        if (user, role, held) not in self.rights:
            self._try_grant(by, user, role, held)

    @rule(by=st.sampled_from((ADMIN, ADMIN, *USERS)), user=users, role=st.sampled_from(ROLES),
          office=st.sampled_from(OFFICES))  # fmt: skip
    def revoke(self, by: str, user: str, role: str, office: str) -> None:
        held = office if role == "office_filler" else None
        if (user, role, held) in self.rights and self._try(
            "revoke", by, r.revoke, user, role, office=held
        ):
            self.rights.discard((user, role, held))

    def _log(self) -> list[r.AuditEntry]:
        with self.store.connect() as connection:
            return r.entries(connection)

    def _rows(self, name: str, *columns: str) -> list[Any]:
        t = table(name)
        with self.store.connect() as connection:
            return list(connection.execute(sa.select(*(t.c[c] for c in columns)).order_by(t.c.pk)))

    def _pick(self, rows: list[Any], index: int) -> Any:
        return rows[index % len(rows)] if rows else None

    def _pending(self, kind: str | None = None) -> list[Any]:
        subs = self._rows("profile_submissions", "pk", "status", "kind")
        return [x for x in subs if x.status == "pending" and kind in (None, x.kind)]

    def _approved(self) -> list[Any]:
        return [p for p in self._rows("profiles", "base_number", "status") if p.base_number]

    # -- rules
    @precondition(lambda self: len(self._rows("profiles", "pk")) < len(NAMES))
    @rule(k=st.integers(0, 2), floor=st.integers(300, 500), actor=heads)
    def submit_new(self, k: int, floor: int, actor: str) -> None:
        # k = 0: the next unused name; else a name that may be taken (refused)
        text = _draft(NAMES[(len(self._rows("profiles", "pk")) + k) % len(NAMES)], floor)
        self._try("submit", actor, r.submit, text, tests=TESTS,
                  backtest_run=record_backtest(self.store, text))  # fmt: skip

    @precondition(lambda self: self._pending("new"))
    @rule(i=st.integers(0, 9), decided=st.integers(-20, 100), lag=lags, actor=secretaries)
    def approve(self, i: int, decided: int, lag: int, actor: str) -> None:
        sub = self._pick(self._pending("new"), i)
        start = decided + lag
        self._try("approve", actor, r.approve, sub.pk, decision=f"EC-{decided}",
                  decided_on=_day(decided), group="1A", unit="12",
                  in_force_from=_day(start), in_force_to=_day(start + 700))  # fmt: skip

    @precondition(lambda self: self._pending())
    @rule(i=st.integers(0, 9), decided=days, actor=secretaries, go=st.integers(0, 3))
    def return_for_rework(self, i: int, decided: int, actor: str, go: int) -> None:
        sub = self._pick(self._pending(), i)
        if sub is not None and go == 0:  # the commission returns one submission in four
            self._try("return", actor, r.return_for_rework, sub.pk, decision="EC-r",
                      decided_on=_day(decided))  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), floor=st.integers(300, 500), actor=heads)
    def submit_amendment(self, i: int, floor: int, actor: str) -> None:
        ed = self._pick(self._rows("profile_editions", "number", "text"), i)
        if ed is None:
            return
        text = re.sub(r"< \d+\n", f"< {floor}\n", ed.text)
        self._try("submit", actor, r.submit, text, tests=TESTS,
                  backtest_run=record_backtest(self.store, text), amends=ed.number)  # fmt: skip

    @precondition(lambda self: self._pending("amend"))
    @rule(i=st.integers(0, 9), decided=days, lag=lags, actor=secretaries)
    def amend(self, i: int, decided: int, lag: int, actor: str) -> None:
        sub = self._pick(self._pending("amend"), i)
        if sub is not None:
            self._try("amend", actor, r.amend, sub.pk, decision="EC-a", decided_on=_day(decided),
                      in_force_from=_day(decided + lag))  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), digit=st.integers(0, 9), actor=heads)
    def clarify(self, i: int, digit: int, actor: str) -> None:
        ed = self._pick(self._rows("profile_editions", "pk", "number"), i)
        if ed is None:
            return
        with self.store.connect() as connection:
            text = r.current_text(connection, ed.pk)
        text = re.sub(r'phone "[^"]*"', f'phone "+380 44 000 000{digit}"', text)
        self._try("clarify", actor, r.clarify, ed.number, text, ground="10.2.3", reason="phone")

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), on=days, ground=st.sampled_from(sorted(r.SUSPENSION_GROUNDS)),
          actor=heads)  # fmt: skip
    def suspend(self, i: int, on: int, ground: str, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("suspend", actor, r.suspend, p.base_number, ground=ground, on=_day(on),
                      reason="r")  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), on=days, actor=heads)
    def resume(self, i: int, on: int, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("resume", actor, r.resume, p.base_number, on=_day(on), reason="r")

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), decided=days, last=ends, actor=secretaries)
    def terminate(self, i: int, decided: int, last: int, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("terminate", actor, r.terminate, p.base_number, decision="EC-t",
                      decided_on=_day(decided), last_day=_day(last))  # fmt: skip

    @precondition(lambda self: not self._rows("profiles", "pk"))
    @rule(actor=heads)
    def submit_regional(self, actor: str) -> None:
        self._try("submit", actor, r.submit, REGIONAL, tests=REGIONAL_TESTS,
                  backtest_run=record_backtest(self.store, REGIONAL))  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), office=st.sampled_from(OFFICES), actor=fillers)
    def fill(self, i: int, office: str, actor: str) -> None:
        ed = self._pick(self._rows("profile_editions", "number", "in_force_from"), i)
        if ed is None or "Low unit prices" not in self._name(ed.number):
            return
        start = ed.in_force_from
        valid = f"{start} .. {start + dt.timedelta(days=60)}"
        order = start - dt.timedelta(days=5)
        text = fill_text(ed.number, "O-1", order.isoformat(), valid).replace("UA100110", office)
        self._try("fill", actor, r.fill, text, responsible=["A", "B"], viewers=[],
                  entered_on=order + dt.timedelta(days=1), scope=office)  # fmt: skip

    def _name(self, number: str) -> str:
        base = number.rsplit("-", 1)[0]
        names = [p.name for p in self._rows("profiles", "name", "base_number")
                 if p.base_number == base]  # fmt: skip
        return names[0] if names else ""

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), actor=heads)
    def purge(self, i: int, actor: str) -> None:
        p = self._pick(self._rows("profiles", "pk", "base_number", "status", "terminated_on"), i)
        if p is None or p.base_number is None:
            return
        past = p.status == "terminated" and kept_until(p.terminated_on) < today()
        if self._try("purge", actor, r.purge, p.base_number) is not None:
            assert past, f"{p.base_number} purged within its retention period"
            self.purged.add(p.pk)
        else:
            assert not (past and self._may(actor, "purge", None)), "a due purge was refused"

    # -- invariants
    @invariant()
    def retention_holds(self) -> None:
        counts: Counter[int] = Counter(x.pk for x in self._rows("profiles", "pk"))
        for name in CASE_FILE:
            counts.update(x.profile_pk for x in self._rows(name, "profile_pk"))
        for pk, seen in self.rows.items():
            if pk in self.purged:
                assert counts[pk] == 0, f"profile/{pk} purged but rows left"
            else:
                assert counts[pk] >= seen, f"rows of profile/{pk} disappeared"
        self.rows = {pk: n for pk, n in counts.items() if n}
        for e in self._log():
            if e.action == "purge":
                details = json.loads(e.details)
                assert dt.date.fromisoformat(details["kept_until"]) < e.logged_at.date()

    @invariant()
    def at_most_one_edition_in_force_per_profile(self) -> None:
        eds = self._rows("profile_editions", "in_force_from", "in_force_to")
        probe = {START}
        for e in eds:
            probe |= {e.in_force_from, e.in_force_from - dt.timedelta(days=1)}
            if e.in_force_to is not None:
                probe |= {e.in_force_to, e.in_force_to + dt.timedelta(days=1)}
        with self.store.connect() as connection:
            for day in probe:
                owners = Counter(x.profile_pk for x in r.in_force(connection, day))
                assert all(n == 1 for n in owners.values()), (day, owners)

    @invariant()
    def numbers_are_unique_and_well_formed(self) -> None:
        eds = self._rows("profile_editions", "profile_pk", "edition", "number")
        assert len({e.number for e in eds}) == len(eds)
        for e in eds:
            assert e.number.endswith(f"-{e.edition:02d}")
        seqs = [p.sequence for p in self._rows("profiles", "sequence") if p.sequence is not None]
        assert len(set(seqs)) == len(seqs)
        by_profile: dict[int, list[int]] = {}
        for e in eds:
            by_profile.setdefault(e.profile_pk, []).append(e.edition)
        assert all(v == list(range(1, len(v) + 1)) for v in by_profile.values())

    @invariant()
    def approved_texts_never_change(self) -> None:
        for e in self._rows("profile_editions", "pk", "text", "sha256"):
            assert e.sha256 == sha256(e.text)
            assert self.texts.setdefault(e.pk, e.sha256) == e.sha256

    @invariant()
    def every_action_is_logged_and_the_chain_verifies(self) -> None:
        log = self._log()
        assert [(e.action, e.actor) for e in log] == self.done
        assert r.verify(self.store).ok


RegistryMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("REGISTRY_MACHINE_EXAMPLES", "12")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRegistryMachine = RegistryMachine.TestCase
