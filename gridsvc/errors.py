"""Domain errors of gridsvc, each with its HTTP status and CLI exit code.

Messages name the offending record and value. The web layer turns any :class:`GridsvcError`
into a JSON error with ``http_status``; the CLI prints it and exits with ``exit_code``.

Exit codes (a public contract for scripts): 0 success, 1 unexpected failure, 2 usage error
(click), 3 input rejected, 4 not found, 5 conflict (stale or concurrent change), 6 solver did
not reach a proven result, 7 forbidden, 8 infeasible settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class GridsvcError(Exception):
    """Base of every error gridsvc reports to a user."""

    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the error."""
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class Reject:
    """One rejected input record: where it was and why."""

    source: str
    record: int | None
    field: str | None
    reason: str
    value: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.record is not None:
            where += f", record {self.record}"
        if self.field:
            where += f", field {self.field}"
        value = f" (value {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.reason}{value}"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON and CSV reports."""
        return {
            "source": self.source,
            "record": self.record,
            "field": self.field,
            "reason": self.reason,
            "value": self.value,
        }


class InputRejected(GridsvcError):
    """Input records failed validation; nothing was written."""

    http_status = 422
    exit_code = 3

    def __init__(self, message: str, rejects: list[Reject]) -> None:
        super().__init__(message, details=[r.to_dict() for r in rejects])
        self.rejects = rejects


class NotFound(GridsvcError):
    """A code or id names nothing (or nothing the caller may see)."""

    http_status = 404
    exit_code = 4


class Conflict(GridsvcError):
    """The data changed under the caller (stale proposal, concurrent run)."""

    http_status = 409
    exit_code = 5


class SolverFailed(GridsvcError):
    """A solver did not reach a proven status; nothing was persisted."""

    http_status = 500
    exit_code = 6


class Forbidden(GridsvcError):
    """The caller's role or scope does not allow this."""

    http_status = 403
    exit_code = 7


class InfeasibleSettings(GridsvcError):
    """Settings or planner controls that no solution can satisfy; names the setting and records."""

    http_status = 422
    exit_code = 8
