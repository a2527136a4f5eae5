"""``riskengine serve``: the HTTP scoring service (issue 13 item 5, docs/service.md).

A Starlette app under uvicorn: ``POST /v1/score``, ``POST /v1/score/batch``, ``GET /v1/bundle``,
``GET /healthz``, ``GET /metrics``, ``GET /openapi.json``; history from the store, every decision
in the decision log, the bundle swapped in when a new one verifies, RFC 9457 problem documents
for bad requests.
"""

from riskengine.service.app import ROUTES, Service, app_from_env, create_app
from riskengine.service.config import CONFIG_ENV, ServiceConfig
from riskengine.service.problems import PROBLEM_TYPES, Problem

__all__ = [
    "CONFIG_ENV",
    "PROBLEM_TYPES",
    "ROUTES",
    "Problem",
    "Service",
    "ServiceConfig",
    "app_from_env",
    "create_app",
]
