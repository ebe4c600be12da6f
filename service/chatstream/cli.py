"""``chatstream`` command line: serve, chat, migrate, prune, make-tiny-model.

``serve`` derives one ``--option-name`` flag from every field of :class:`Settings`, so the CLI, the
environment (``CHATSTREAM_*``) and the Helm chart can never drift apart. Flags given on the command
line win over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import typing
from typing import Any

from .settings import Settings

ALIASES = {"use_mock_response": ["--mock"]}
#: defaults that --help describes instead of printing (the placeholder secret is no secret to use)
DEFAULT_TEXT = {"session_secret": "unset: a generated key where that is safe, see docs/security.md"}


def _field_kind(annotation: Any) -> str:
    args = typing.get_args(annotation)
    types = set(args) if args else {annotation}
    types.discard(type(None))
    if types == {bool}:
        return "bool"
    origin = {typing.get_origin(t) or t for t in types}
    if dict in origin:
        return "json"
    if list in origin:
        return "list"
    return "value"


def default_text(name: str) -> str:
    """A settings field's default as ``--help`` shows it (JSON for lists, maps and booleans)."""
    if name in DEFAULT_TEXT:
        return DEFAULT_TEXT[name]
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value) if value != "" else '""'


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per settings field, its default in the help; bools get ``--flag/--no-flag``."""
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        flags = [flag, *ALIASES.get(name, [])]
        kind = _field_kind(field.annotation)
        description = (field.description or "").rstrip(".").replace("%", "%%")  # argparse formats help
        details = f"default: {default_text(name)}; env CHATSTREAM_{name.upper()}".replace("%", "%%")
        if typing.get_origin(field.annotation) is typing.Literal:
            details = "one of " + "|".join(map(str, typing.get_args(field.annotation))) + "; " + details
        help_text = f"{description} ({details})" if description else f"({details})"
        if kind == "bool":
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            metavar = "JSON" if kind == "json" else ("A,B" if kind == "list" else name.upper())
            parser.add_argument(*flags, dest=name, default=None, metavar=metavar, help=help_text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    given: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    return Settings(**given)


def parse_duration(text: str) -> float:
    """'30d', '12h', '15m', '45s' or plain seconds → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 15m)")
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * factor


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    settings = settings_from_args(args)
    return serve(settings)


def cmd_migrate(args: argparse.Namespace) -> int:
    from .history.migrate import upgrade_to_head

    settings = settings_from_args(args)
    if not settings.database_url:
        settings.ensure_data_dir()
    upgrade_to_head(settings.database_url or _sqlite_url(settings))
    print("database is at the newest schema revision")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .history.sql import prune_conversations

    settings = settings_from_args(args)
    deleted = asyncio.run(
        prune_conversations(settings.database_url or _sqlite_url(settings), args.older_than)
    )
    print(json.dumps({"deleted_conversations": deleted}))
    return 0


def _sqlite_url(settings: Settings) -> str:
    return f"sqlite+aiosqlite:///{settings.sqlite_path}"


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from .tiny_model import make_tiny_model

    path = make_tiny_model(
        args.directory,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        intermediate_size=args.intermediate_size,
        vocab_size=args.vocab_size,
        seed=args.seed,
    )
    print(f"wrote a random-weight Llama model and its tokenizer to {path}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .console.terminal import run_console

    return run_console(args, settings_from_args(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatstream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (uvicorn in-process)")
    add_settings_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade the history database to the newest schema")
    add_settings_arguments(migrate)
    migrate.set_defaults(func=cmd_migrate)

    prune = sub.add_parser("prune", help="delete conversations not updated for a while")
    prune.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 30d, 12h")
    add_settings_arguments(prune)
    prune.set_defaults(func=cmd_prune)

    tiny = sub.add_parser("make-tiny-model", help="write a small random-weight Llama model for tests")
    tiny.add_argument("directory")
    tiny.add_argument("--hidden-size", type=int, default=64)
    tiny.add_argument("--num-layers", type=int, default=2)
    tiny.add_argument("--num-heads", type=int, default=4)
    tiny.add_argument("--intermediate-size", type=int, default=128)
    tiny.add_argument("--vocab-size", type=int, default=2000)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_make_tiny_model)

    chat = sub.add_parser("chat", help="chat in the terminal with a model, the mock, or a running server")
    chat.add_argument("--url", default=None, help="talk to a running service, e.g. http://127.0.0.1:8000")
    chat.add_argument("--api", choices=["chat_stream", "openai"], default="chat_stream")
    chat.add_argument("--api-key", default=None)
    add_settings_arguments(chat)
    chat.set_defaults(func=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, ImportError) as exc:
        if isinstance(exc, ImportError) and "chatstream" not in str(exc):
            raise
        print(f"chatstream: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
