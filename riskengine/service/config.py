"""The service's settings (``riskengine serve``'s options), passed to each worker process in
the environment as JSON."""

from __future__ import annotations

import json
import os
from typing import Literal

import attrs

__all__ = ["CONFIG_ENV", "ServiceConfig"]

#: The environment variable the settings reach the worker processes in.
CONFIG_ENV = "RISKENGINE_SERVICE_CONFIG"


@attrs.frozen
class ServiceConfig:
    """``bundle``/``public_key``: the signed bundle and its key; ``db``: the store (history and
    decision log); ``spool``: the folder of the decision log's spool files (one per worker);
    ``random_config``/``random_key_file``/``lanes``: as ``riskengine score``'s options;
    ``max_body``: the largest request body in bytes; ``log_ack``: ``"background"`` (answered at
    once, written off the request path within ``log_interval`` seconds) or ``"request"`` (every
    decision acknowledged -- in the store or fsync'd in the spool -- before its answer is sent:
    a store commit per request);
    ``watch_interval``: seconds between looks at the bundle file; ``preload_history``: read the
    history of every subject of the bundle's profiles at start (and after a swap), so that no
    request waits for a first lookup; ``freeze_heap``: :func:`gc.freeze` the loaded bundle so
    that the garbage collector does not walk it again and again (``riskengine.service.heap``);
    ``batch_threads``: how many batches a worker scores at once (the others wait their turn:
    batches interleaved on one interpreter's lock only delay each other's answers)."""

    bundle: str
    public_key: str
    db: str
    spool: str
    random_config: str | None = None
    random_key_file: str | None = None
    lanes: str | None = None
    max_body: int = 16 * 1024 * 1024
    log_ack: Literal["request", "background"] = "background"
    log_interval: float = 0.2
    watch_interval: float = 1.0
    workers: int = 1
    preload_history: bool = False
    freeze_heap: bool = True
    batch_threads: int = 1

    def to_env(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_env(cls) -> ServiceConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(
                f"${CONFIG_ENV} is not set: start the service with `riskengine serve`"
            )
        return cls(**json.loads(raw))
