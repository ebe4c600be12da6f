"""Errors that end a request with a clear JSON answer instead of a 500."""

from __future__ import annotations

from typing import Any


class ChatStreamError(Exception):
    """A request-level failure with its HTTP status and a stable machine-readable code.

    Rendered as ``{"error": code, "detail": message}`` (plus ``param`` where one field is at fault);
    the OpenAI routes render the same error in OpenAI's format.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.param:
            body["param"] = self.param
        return body


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> ChatStreamError:
    return ChatStreamError(400, code, message, param=param)


def not_found(message: str = "conversation not found") -> ChatStreamError:
    return ChatStreamError(404, "not_found", message)


def conflict(message: str) -> ChatStreamError:
    return ChatStreamError(409, "turn_in_progress", message)


def unavailable(message: str, code: str = "service_unavailable", retry_after: int = 1) -> ChatStreamError:
    return ChatStreamError(503, code, message, headers={"Retry-After": str(retry_after)})
