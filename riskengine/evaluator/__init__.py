"""The compiled evaluator: score declarations with a set of profiles, explain why, fast.

Load once with :meth:`Engine.load`, then ``engine.score(declaration, as_of)``. See
``docs/evaluator.md`` for the embedding guide.
"""

from riskengine.evaluator.compiled import (
    CompiledProfile,
    ControlForm,
    EvaluationError,
    FiredProfile,
)
from riskengine.evaluator.drafts import DraftError
from riskengine.evaluator.engine import (
    Engine,
    Lane,
    LaneConfig,
    LoadTimings,
    ProfileSet,
    RejectedDeclaration,
    ScoreResult,
)
from riskengine.evaluator.explain import (
    ControlExplanation,
    FillInfo,
    IndicatorExplanation,
    IndicatorState,
    ItemExplanation,
    ProfileExplanation,
    TermExplanation,
)
from riskengine.evaluator.history import (
    Clearance,
    ControlResult,
    EmptyHistoryProvider,
    HistoryProvider,
    HistoryRecord,
    HistoryValue,
    InMemoryHistoryProvider,
)
from riskengine.evaluator.native import NativeUnavailable
from riskengine.evaluator.random_selection import RandomSelection, RandomSelectionError
from riskengine.evaluator.windows import Window

__all__ = [
    "Clearance",
    "CompiledProfile",
    "ControlExplanation",
    "ControlForm",
    "ControlResult",
    "DraftError",
    "EmptyHistoryProvider",
    "Engine",
    "EvaluationError",
    "FillInfo",
    "FiredProfile",
    "HistoryProvider",
    "HistoryRecord",
    "HistoryValue",
    "InMemoryHistoryProvider",
    "IndicatorExplanation",
    "IndicatorState",
    "ItemExplanation",
    "Lane",
    "LaneConfig",
    "LoadTimings",
    "NativeUnavailable",
    "ProfileExplanation",
    "ProfileSet",
    "RandomSelection",
    "RandomSelectionError",
    "RejectedDeclaration",
    "ScoreResult",
    "TermExplanation",
    "Window",
]
