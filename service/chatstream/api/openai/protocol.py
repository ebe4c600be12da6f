"""The OpenAI chat completions protocol, as far as chatstream serves it: wire models and request checks.

Requests accept (and ignore) unknown fields so newer SDKs keep working; fields that would change the
answer in a way we cannot honour (``n > 1``, tools, logprobs, JSON mode) are refused by
:func:`parse_request` with a 400 instead of being silently ignored. Every error leaves as
:func:`openai_error`'s ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...errors import ChatStreamError, bad_request
from ..http import parse_json_object, parse_model

if TYPE_CHECKING:
    from ...core.turn_stream import TurnEvent

SUPPORTED_ROLES = ("system", "developer", "user", "assistant")


class TextPart(BaseModel):
    """One ``{"type": "text", "text": ...}`` element of a list-valued ``content``."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` body (fields we do not use are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    n: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    #: chatstream extension (also ``X-ChatStream-Conversation-Id``): store the turn in this conversation
    conversation_id: str | None = Field(None, max_length=64)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        items = [self.stop] if isinstance(self.stop, str) else self.stop
        return [item for item in items if item]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE event; ``usage`` is only present (null or filled) when ``include_usage`` was asked."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatstream"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- errors ---------------------------------------------------------------------------------------
ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def openai_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's format; 4xx are ``invalid_request_error`` unless more specific."""
    kind = ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    body = ErrorBody(error=ErrorDetail(message=message, type=kind, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_from(error: ChatStreamError) -> JSONResponse:
    """A service refusal (4xx, 503) in OpenAI's format, with its headers (``Retry-After``)."""
    return openai_error(
        error.status, error.message, code=error.code, param=error.param, headers=error.headers
    )


# --- requests -------------------------------------------------------------------------------------
def parse_request(raw: bytes) -> ChatCompletionRequest:
    """Decode and validate the body, refusing what we would otherwise silently get wrong."""
    data = parse_json_object(raw, empty="request body is empty; send a JSON chat completion request")
    body = parse_model(ChatCompletionRequest, data)
    if body.n is not None and body.n > 1:
        raise bad_request("only n=1 is supported", param="n", code="unsupported_parameter")
    for name in ("tools", "functions"):
        if getattr(body, name):
            raise bad_request(
                f"{name} are not supported by this server", param=name, code="unsupported_parameter"
            )
    for name in ("tool_choice", "function_call"):
        value = getattr(body, name)
        if value is not None and value != "none":
            raise bad_request(
                f"{name} is not supported by this server", param=name, code="unsupported_parameter"
            )
    if body.logprobs or body.top_logprobs:
        raise bad_request("logprobs are not supported", param="logprobs", code="unsupported_parameter")
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise bad_request(
            "only response_format type 'text' is supported",
            param="response_format",
            code="unsupported_parameter",
        )
    return body


def message_text(message: ChatMessage, index: int) -> str:
    """A message's content as one string: text parts are joined; other part types are refused."""
    content = message.content
    if content is None:
        raise bad_request(f"messages.{index}.content is required", param=f"messages.{index}.content")
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise bad_request(
                f"messages.{index}.content: only text parts are supported (got {part.type!r})",
                param=f"messages.{index}.content",
            )
        texts.append(part.text)
    return "".join(texts)


def to_turn_messages(body: ChatCompletionRequest, max_chars: int) -> list[dict[str, str]]:
    """Validated ``[{"role", "content"}]`` ending in a user message."""
    messages = []
    for index, message in enumerate(body.messages):
        if message.role not in SUPPORTED_ROLES:
            raise bad_request(
                f"messages.{index}.role {message.role!r} is not supported "
                f"(use one of {', '.join(SUPPORTED_ROLES)})",
                param=f"messages.{index}.role",
            )
        text = message_text(message, index)
        if len(text) > max_chars:
            raise bad_request(
                f"messages.{index}.content is longer than {max_chars} characters",
                param=f"messages.{index}.content",
                code="input_too_long",
            )
        messages.append({"role": message.role, "content": text})
    if messages[-1]["role"] != "user":
        raise bad_request("the last message must have role 'user'", param="messages")
    return messages


# --- responses ------------------------------------------------------------------------------------
def usage_of(event: TurnEvent) -> Usage:
    """The token counts of a finished turn."""
    return Usage(
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        total_tokens=event.prompt_tokens + event.completion_tokens,
    )


def finish_reason(reason: str | None) -> str:
    """OpenAI's two finish reasons: the length limit, or a stop (EOS or a stop string)."""
    return "length" if reason == "length" else "stop"
