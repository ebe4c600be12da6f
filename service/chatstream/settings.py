"""One settings class for the service.

Every option of the seed's ``ChatStream`` constructor and every server setting lives here, so the CLI
(`chatstream serve --option-name`), the environment (``CHATSTREAM_OPTION_NAME``), the app factory,
Alembic's ``env.py`` and the Helm chart all map onto the same names. Tests derive the chart's env
wiring from ``Settings.model_fields``: a field added here is a field the chart may set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SESSION_SECRET = "chatstream-dev-secret-change-me"
SECRET_HELP = (
    "Set CHATSTREAM_SESSION_SECRET (or --session-secret) to one long random string shared by every "
    'process, e.g. CHATSTREAM_SESSION_SECRET="$(openssl rand -hex 32)"; with the Helm chart, '
    "secrets.sessionSecret or secrets.existingSecret (key session-secret). --dev-mode starts anyway, "
    "with a key of its own in each process."
)


def default_data_dir() -> str:
    """``$XDG_DATA_HOME/chatstream``, else ``~/.local/share/chatstream`` (the XDG base directory rule)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "chatstream")


RepetitionPenaltyMethod = Literal["multiplicative", "subtractive"]


@dataclass(frozen=True)
class GenerationDefaults:
    """The seed's generation defaults: the one place that the settings fields, ``ChatStream``'s
    constructor and the engine's ``SamplingParams`` take them from."""

    temperature: float = 1.0
    top_k: int | None = 50
    top_p: float | None = 1.0
    repetition_penalty: float | None = None
    repetition_penalty_method: RepetitionPenaltyMethod = "multiplicative"
    max_new_tokens: int = 256
    context_len: int = 1024


GENERATION_DEFAULTS = GenerationDefaults()


class Settings(BaseSettings):
    """Service configuration read from ``CHATSTREAM_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CHATSTREAM_", extra="ignore", validate_default=True)

    # --- the seed's ChatStream options -------------------------------------------------------
    model: str | None = Field(None, description="Model directory or HuggingFace hub id.")
    tokenizer: str | None = Field(None, description="Tokenizer path or hub id (defaults to the model).")
    device: str = Field("cpu", description='"cpu", "cuda", "cuda:N" or "mps".')
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    num_of_concurrent_executions: int = Field(2, ge=1, le=4096)
    max_queue_size: int = Field(5, ge=0, le=100_000)
    too_many_request_as_http_error: bool = False
    use_mock_response: bool = False
    mock_params: dict[str, Any] = Field(default_factory=lambda: {"type": "round"})
    chat_prompt_clazz: str = Field(
        "auto",
        description="Prompt class: 'auto' (chat template when the tokenizer has one), 'chat_template', "
        "'redpajama', 'rinna', or a dotted path 'package.module:ClassName'.",
    )
    max_new_tokens: int = Field(GENERATION_DEFAULTS.max_new_tokens, ge=1)
    context_len: int = Field(GENERATION_DEFAULTS.context_len, ge=8)
    temperature: float = Field(GENERATION_DEFAULTS.temperature, ge=0.0)
    top_k: int | None = Field(GENERATION_DEFAULTS.top_k, ge=0)
    top_p: float | None = Field(GENERATION_DEFAULTS.top_p, ge=0.0, le=1.0)
    repetition_penalty: float | None = GENERATION_DEFAULTS.repetition_penalty
    repetition_penalty_method: Literal["multiplicative", "subtractive"] = (
        GENERATION_DEFAULTS.repetition_penalty_method
    )
    add_special_tokens: bool | None = None
    trust_remote_code: bool = False
    num_gpus: int | None = Field(
        None,
        ge=1,
        description="Spread the model over the first N GPUs (accelerate device_map); unset or 1 loads "
        "the whole model on --device.",
    )
    max_gpu_memory: str | None = Field(
        None,
        description="Per-GPU memory cap when --num-gpus > 1, e.g. 20GiB; default 85% of each GPU's free "
        "memory.",
    )

    # --- engine ------------------------------------------------------------------------------
    kv_cache_tokens: int = Field(
        0, ge=0, description="KV cache budget in tokens across running sequences; 0 = no limit."
    )
    prefill_chunk_tokens: int = Field(
        512, ge=16, description="Token budget for prompt processing per engine step."
    )
    max_new_tokens_cap: int = Field(4096, ge=1, description="Upper bound on max_new_tokens from clients.")
    prefix_cache_tokens: int | None = Field(
        None,
        ge=0,
        description="KV prefix cache budget in tokens, shared by all conversations; unset = "
        "kv_cache_tokens when set, else a quarter of the memory free at start (at most 1,048,576); 0 = off.",
    )

    # --- HTTP server -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    root_path: str = ""
    max_input_chars: int = Field(16_000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    drain_timeout_sec: float = Field(30.0, ge=0.0)
    retry_after_sec: int = Field(1, ge=0)
    log_level: str = "info"
    log_json: bool = False
    log_prompts: bool = False
    web_ui: bool = True
    web_ui_params: dict[str, Any] = Field(
        default_factory=dict,
        description="The chat page's options as JSON: the seed's ui_init_params (welcomeMessage, "
        "clearContextOnReload, regenerate_enabled, style_opts with button labels and placeholder, …).",
    )

    # --- security ----------------------------------------------------------------------------
    session_secret: str = DEFAULT_SESSION_SECRET
    dev_mode: bool = False
    session_cookie_name: str = "chatstream_session"
    session_cookie_secure: bool = False
    session_max_age_sec: int = Field(14 * 24 * 3600, ge=60)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- history -----------------------------------------------------------------------------
    history: Literal["auto", "memory", "sql"] = Field(
        "auto", description="'sql' keeps chat history in the database; 'memory' in process sessions."
    )
    database_url: str | None = Field(None, description="SQLAlchemy async URL; none = embedded SQLite.")
    data_dir: str = Field(
        default_factory=default_data_dir,
        description="Where runtime files live (the embedded SQLite database, the generated session key).",
    )
    sqlite_path: str = Field(
        "chatstream.db", description="The embedded SQLite file; relative to data_dir unless absolute."
    )
    db_pool_size: int = Field(10, ge=1)
    db_timeout_sec: float = Field(5.0, gt=0)
    auto_migrate: bool = True
    turn_lease_sec: float = Field(
        10.0,
        gt=0,
        description="How long a running turn's claim on its conversation lasts without renewal: after a "
        "pod dies, its conversations accept new turns again within this time.",
    )
    history_write_interval_sec: float = Field(
        1.0, gt=0, description="How often partial replies are written to the store (and leases renewed)."
    )
    sse_keepalive_sec: float = Field(
        15.0,
        gt=0,
        description="Seconds without an event after which an OpenAI stream sends an SSE comment, so "
        "proxies and load balancers keep a queued or slow stream open.",
    )

    # --- metrics -----------------------------------------------------------------------------
    metrics_enabled: bool = True
    served_model_name: str | None = None

    @field_validator("web_ui_params", mode="before")
    @classmethod
    def _parse_web_ui_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("mock_params", mode="before")
    @classmethod
    def _parse_mock_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {"type": "round"}
        return value

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        mock_type = self.mock_params.get("type", "round")
        if mock_type not in ("round", "long", "echo"):
            raise ValueError(f"mock_params.type must be round, long or echo, not {mock_type!r}")
        if self.turn_lease_sec < 2 * self.history_write_interval_sec:
            raise ValueError("turn_lease_sec must be at least twice history_write_interval_sec")
        # Runtime files stay together: a relative database path is taken inside the data directory.
        self.data_dir = str(Path(self.data_dir).expanduser().absolute())
        sqlite = Path(self.sqlite_path).expanduser()
        self.sqlite_path = str(sqlite if sqlite.is_absolute() else Path(self.data_dir) / sqlite)
        return self

    @property
    def model_name(self) -> str:
        """The name under which the model is served (OpenAI `model`, metrics label)."""
        if self.served_model_name:
            return self.served_model_name
        if self.use_mock_response or not self.model:
            return "chatstream-mock"
        return self.model.rstrip("/").split("/")[-1]

    @property
    def uses_default_secret(self) -> bool:
        return self.session_secret == DEFAULT_SESSION_SECRET

    @property
    def uses_embedded_sqlite(self) -> bool:
        """History in the SQLite file under ``data_dir`` (the zero-config start)."""
        return self.history != "memory" and not self.database_url

    def ensure_data_dir(self) -> Path:
        """Create ``data_dir`` (owner-only) and the database file's folder; returns ``data_dir``."""
        path = Path(self.data_dir)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        return path

    def session_secret_refusal(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Why the built-in placeholder may not stand in for a secret here; None when it may.

        One process on one machine gets a generated key instead (kept beside the embedded SQLite
        database, or per process with memory sessions). Where several processes must accept each
        other's cookies, each would generate a different key: a configured database (replicas share
        conversations through it) or a Kubernetes pod (the chart's replicas, ``KUBERNETES_SERVICE_HOST``
        is set in every pod). ``dev_mode`` accepts the risk.
        """
        if not self.uses_default_secret or self.dev_mode:
            return None
        env = os.environ if environ is None else environ
        if self.database_url:
            reason = "a database is configured (CHATSTREAM_DATABASE_URL), so several replicas may share it"
        elif env.get("KUBERNETES_SERVICE_HOST"):
            reason = "this runs in a Kubernetes pod, where replicas must share one key"
        else:
            return None
        return f"CHATSTREAM_SESSION_SECRET is not set and {reason}. {SECRET_HELP}"

    def check_session_secret(self) -> None:
        """Raise ``ValueError`` (the CLI exits 2 with its message) where a real secret is required."""
        refusal = self.session_secret_refusal()
        if refusal:
            raise ValueError(refusal)
