"""RFC 9457 problem documents: every answer that is not a result says what went wrong in
``application/problem+json`` (``type``, ``title``, ``status``, ``detail``, ``instance`` and, per
type, the field and goods item of a bad value or the row of a batch)."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
from starlette.responses import Response

__all__ = ["MEDIA_TYPE", "PROBLEM_TYPES", "Problem", "ProblemType", "problem_response"]

MEDIA_TYPE = "application/problem+json"
#: The base of the problem type URIs (a URN: stable, needs no web site).
_BASE = "urn:riskengine:problem:"


@attrs.frozen
class ProblemType:
    """A kind of problem: its slug (the type URI is ``urn:riskengine:problem:SLUG``), status and
    title (the same for every occurrence, RFC 9457 §3.1.3), and when it happens (for the docs and
    the OpenAPI document)."""

    slug: str
    status: int
    title: str
    when: str

    @property
    def uri(self) -> str:
        return _BASE + self.slug


PROBLEM_TYPES: dict[str, ProblemType] = {
    t.slug: t
    for t in (
        ProblemType(
            "malformed-json",
            400,
            "The body is not JSON",
            "the body is not JSON text (with the line and column of the error), not UTF-8, or "
            "gzip that does not decompress",
        ),
        ProblemType(
            "not-a-declaration",
            422,
            "The JSON is not a declaration",
            "the JSON is not an object (one declaration), or a batch is not an array of them",
        ),
        ProblemType(
            "invalid-declaration",
            422,
            "A declaration field holds a bad value",
            "a field the profiles read has a value of the wrong type or out of range "
            "(`field`, `item`), or the declaration has no date or no id",
        ),
        ProblemType(
            "invalid-parameter",
            400,
            "A query parameter is not valid",
            "`as_of` is not a date (YYYY-MM-DD) or is given twice, or the query has a parameter "
            "the endpoint does not take (`parameter`)",
        ),
        ProblemType(
            "evaluation-failed",
            422,
            "A profile could not evaluate the declaration",
            "a value reached a profile it cannot use (`profile`)",
        ),
        ProblemType(
            "empty-batch",
            422,
            "The batch holds no declaration",
            "an empty array or a body without a line",
        ),
        ProblemType(
            "body-too-large",
            413,
            "The body is too large",
            "the body exceeds the service's --max-body bytes, a gzip body also once "
            "decompressed (`max_body`)",
        ),
        ProblemType(
            "unsupported-media-type",
            415,
            "Unsupported content type",
            "the Content-Type is not one the endpoint reads (`accepted`)",
        ),
        ProblemType(
            "unsupported-content-encoding",
            415,
            "Unsupported content encoding",
            "the body's Content-Encoding is not gzip or none (`accepted`, and `Accept-Encoding`)",
        ),
        ProblemType("not-found", 404, "Not found", "no endpoint at this path"),
        ProblemType(
            "method-not-allowed",
            405,
            "Method not allowed",
            "the endpoint does not answer this method (`allowed`)",
        ),
        ProblemType(
            "store-unavailable",
            503,
            "The store is unavailable",
            "history could not be read from the store: retry later (`Retry-After`)",
        ),
        ProblemType(
            "decision-log-full",
            503,
            "The decision log is full",
            "the decision log cannot take more records now: retry later",
        ),
        ProblemType(
            "shutting-down",
            503,
            "The service is shutting down",
            "the service is draining: send the request to another replica",
        ),
        ProblemType(
            "internal-error",
            500,
            "Internal error",
            "a bug: the detail names the exception (never expected; please report it)",
        ),
    )
}


class Problem(Exception):
    """Raised by a handler: answered with its problem document."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.type = PROBLEM_TYPES[slug]
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def response(self, instance: str | None = None) -> Response:
        return problem_response(
            self.type.slug, self.detail, instance=instance, headers=self.headers,
            **self.extensions,
        )  # fmt: skip


def problem_response(
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """The problem document of type ``slug`` as a response."""
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return Response(
        orjson.dumps(body), status_code=kind.status, media_type=MEDIA_TYPE, headers=headers
    )
