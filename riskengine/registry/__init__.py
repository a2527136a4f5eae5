"""The profile registry: what happens to a profile after testing (seed 003 §6-§8, §10, §11).

A draft is **submitted** with its evidence (checks clean, unit tests pass, a backtest of the text
recorded); the commission **approves** it (number ``WW/XX/YYYY/ZZZZZ-01`` written into the text)
or **returns** it, later **amends** it (edition VV+1) or **terminates** it; the risk unit
**clarifies** the passport on the §10.2 grounds, **suspends** and **resumes** it (§10.3); a
regional office enters its **fills** with its order (§11). Every action appends to the
hash-chained audit log in the same transaction; :func:`verify` checks it. Every action first
asks :func:`require` whether its actor's role allows it; :func:`grant` and :func:`revoke` manage
the roles, :func:`purge` deletes a case file after its retention period; :func:`review` records
the commission's decision after an effectiveness review (§9.4-9.5) or an office's monitoring
(§11.5). See docs/registry.md.
"""

from riskengine.registry.access import RIGHTS, ROLES, Member, members, require, roles_of
from riskengine.registry.admin import grant, kept_until, purge, revoke
from riskengine.registry.audit import AuditEntry, Verification, entries
from riskengine.registry.clarify import GROUNDS as CLARIFICATION_GROUNDS
from riskengine.registry.evidence import RegistryError
from riskengine.registry.lifecycle import (
    Edition,
    Submission,
    amend,
    approve,
    return_for_rework,
    submit,
    terminate,
)
from riskengine.registry.operations import (
    SUSPENSION_GROUNDS,
    FillRecord,
    InForce,
    clarify,
    current_text,
    fill,
    in_force,
    resume,
    suspend,
    verify,
)
from riskengine.registry.review import DECISIONS as REVIEW_DECISIONS
from riskengine.registry.review import Review, review

__all__ = [
    "CLARIFICATION_GROUNDS",
    "REVIEW_DECISIONS",
    "RIGHTS",
    "ROLES",
    "SUSPENSION_GROUNDS",
    "AuditEntry",
    "Edition",
    "FillRecord",
    "InForce",
    "Member",
    "RegistryError",
    "Review",
    "Submission",
    "Verification",
    "amend",
    "approve",
    "clarify",
    "current_text",
    "entries",
    "fill",
    "grant",
    "in_force",
    "kept_until",
    "members",
    "purge",
    "require",
    "resume",
    "return_for_rework",
    "review",
    "revoke",
    "roles_of",
    "submit",
    "suspend",
    "terminate",
    "verify",
]
