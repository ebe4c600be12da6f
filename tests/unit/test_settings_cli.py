"""Settings, environment and CLI flags stay one vocabulary."""

from __future__ import annotations

import argparse

import pytest

from chatstream.cli import build_parser, parse_duration, settings_from_args
from chatstream.settings import Settings


def test_every_settings_field_is_a_serve_flag():
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]
    dests = {action.dest for action in serve._actions}
    assert set(Settings.model_fields) <= dests


def test_env_and_flags_map_onto_the_seed_options(monkeypatch):
    monkeypatch.setenv("CHATSTREAM_NUM_OF_CONCURRENT_EXECUTIONS", "7")
    monkeypatch.setenv("CHATSTREAM_MOCK_PARAMS", '{"type": "echo", "time_per_token_sec": 0}')
    monkeypatch.setenv("CHATSTREAM_API_KEYS", "a,b")
    args = build_parser().parse_args(
        ["serve", "--mock", "--max-queue-size", "9", "--too-many-request-as-http-error", "--top-k", "5"]
    )
    settings = settings_from_args(args)
    assert settings.num_of_concurrent_executions == 7  # from the environment
    assert settings.max_queue_size == 9  # flags win
    assert settings.use_mock_response and settings.too_many_request_as_http_error
    assert settings.mock_params == {"type": "echo", "time_per_token_sec": 0}
    assert settings.api_keys == ["a", "b"]
    assert settings.top_k == 5


def test_seed_defaults():
    settings = Settings(_env_file=None)
    assert (settings.num_of_concurrent_executions, settings.max_queue_size) == (2, 5)
    assert settings.too_many_request_as_http_error is False
    assert settings.mock_params == {"type": "round"}
    assert (settings.max_new_tokens, settings.context_len) == (256, 1024)
    assert (settings.temperature, settings.top_k, settings.top_p) == (1.0, 50, 1.0)
    assert settings.repetition_penalty is None and settings.repetition_penalty_method == "multiplicative"


@pytest.mark.parametrize("bad", [{"mock_params": {"type": "nope"}}, {"max_queue_size": -1}, {"top_p": 2}])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Settings(**bad)


def test_durations():
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("90") == 90
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")
