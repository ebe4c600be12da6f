"""Each preset's stop strings end generation in the real engine, cut before the stop string.

The tiny model is made to write a scripted reply (a forward hook forces each next token), with a
stop string in the middle; the engine must end the reply there with finish reason ``stop``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from chatstream.engine.base import GenerationRequest, SamplingParams
from chatstream.engine.text import find_stop
from chatstream.prompts.registry import PROMPT_PRESETS
from tests.engine.helpers import collect, running_engine

PRESETS = {key: cls for key, cls in PROMPT_PRESETS.items() if key != "chat_template"}
STOP_CASES = [(key, stop) for key, cls in PRESETS.items() for stop in cls().get_final_stop_strs()] + [
    (key, "</s>") for key in PRESETS
]  # the end-of-text token ends every preset's reply
REPLY = "Sure, here it is"


class ScriptedModel:
    """Forces ``tokens`` as the model's choices, one per forward call (prefill, then each step)."""

    def __init__(self, model: Any, tokens: list[int]) -> None:
        self.tokens = tokens
        self.calls = 0
        self.handle = model.register_forward_hook(self._force)

    def _force(self, module: Any, args: Any, output: Any) -> Any:
        token = self.tokens[min(self.calls, len(self.tokens) - 1)]
        last = output.logits[:, -1]
        last.fill_(-1e4)
        last[:, token] = 1e4
        self.calls += 1
        return output

    def remove(self) -> None:
        self.handle.remove()


def test_every_preset_has_a_way_to_stop():
    assert {key for key, _ in STOP_CASES} == set(PRESETS)
    for key, cls in PRESETS.items():
        stops = cls().get_final_stop_strs()
        assert all(stops), key
        assert stops == list(dict.fromkeys(stops)), f"{key}: duplicate stop strings"


@pytest.mark.parametrize(("key", "stop"), STOP_CASES, ids=[f"{k}-{s!r}" for k, s in STOP_CASES])
def test_a_stop_string_in_the_text_is_found(key, stop):
    text = f"{REPLY}{stop} and more"
    assert find_stop(text, PRESETS[key]().get_final_stop_strs() + ["</s>"]) == len(REPLY)


@pytest.mark.parametrize(("key", "stop"), STOP_CASES, ids=[f"{k}-{s!r}" for k, s in STOP_CASES])
async def test_the_engine_ends_the_reply_at_the_stop_string(tiny_pair, key, stop):
    model, tokenizer = tiny_pair
    prompt = PRESETS[key]()
    prompt.add_requester_msg("Hello there")
    prompt.add_responder_msg(None)
    text = prompt.create_prompt()
    script = tokenizer.encode(f"{REPLY}{stop} and then the model rambles on", add_special_tokens=False)
    stops = prompt.get_final_stop_strs()
    params = SamplingParams(temperature=0.0, max_new_tokens=len(script) + 4, stop=stops)
    request = GenerationRequest(
        request_id=key,
        prompt=text,
        params=params,
        prompt_token_ids=tokenizer.encode(text),
    )
    scripted = ScriptedModel(model, script)
    try:
        with torch.inference_mode():
            async with running_engine(model, tokenizer, max_batch_size=1) as engine:
                got = await collect(engine.generate(request))
    finally:
        scripted.remove()
    assert got.text == REPLY
    assert got.last.finished and got.last.finish_reason == "stop"
    assert len(got.tokens) < len(script)  # it stopped before the script ran out
