"""TokenSamplerHft and TokenSamplerIsok: the seed's sampler API, its step order and its filters."""

from __future__ import annotations

import math

import pytest
import torch

from chatstream.engine.base import SamplingParams
from chatstream.engine.sampling import choose_token
from chatstream.engine.token_samplers import (
    TokenSamplerBase,
    TokenSamplerBuilder,
    TokenSamplerHft,
    TokenSamplerIsok,
)


def logits_for(probs: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p) for p in probs])


def draws(sampler: TokenSamplerBase, logits: torch.Tensor, **options) -> set[int]:
    """The tokens 300 seeded draws pick."""
    generator = torch.Generator().manual_seed(0)
    return {sampler.do_sample(logits, generator=generator, **options) for _ in range(300)}


@pytest.mark.parametrize("cls", [TokenSamplerHft, TokenSamplerIsok])
def test_a_seeded_generator_gives_the_same_tokens(cls):
    logits = torch.randn(500, generator=torch.Generator().manual_seed(1))

    def run(seed: int) -> list[int]:
        sampler = cls(generator=torch.Generator().manual_seed(seed))
        return [sampler.do_sample(logits, top_k=50, top_p=0.9, temperature=1.3) for _ in range(40)]

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("cls", [TokenSamplerHft, TokenSamplerIsok])
def test_only_the_top_k_tokens_are_drawn(cls):
    logits = torch.randn(200, generator=torch.Generator().manual_seed(3))
    best = set(torch.topk(logits, 3).indices.tolist())
    got = draws(cls(), logits, top_k=3, temperature=5.0)  # a hot temperature flattens the rest
    assert got == best
    assert len(draws(cls(), logits, top_k=None, temperature=5.0)) > 3


def test_top_p_keeps_the_smallest_set_of_best_tokens_reaching_p():
    logits = logits_for([0.5, 0.3, 0.15, 0.05])
    hft = TokenSamplerHft()
    assert draws(hft, logits, top_p=0.7) == {0, 1}
    assert draws(hft, logits, top_p=0.4) == {0}
    assert draws(hft, logits, top_p=0.0) == {0}  # the best token always stays
    assert draws(hft, logits, top_p=1.0) == {0, 1, 2, 3}
    assert draws(hft, logits, top_p=None) == {0, 1, 2, 3}


def test_isok_ignores_top_p_and_samples_inside_the_top_k():
    logits = logits_for([0.5, 0.3, 0.15, 0.05])
    assert draws(TokenSamplerIsok(), logits, top_p=0.1) == {0, 1, 2, 3}
    assert draws(TokenSamplerIsok(), logits, top_k=2, top_p=0.1) == {0, 1}


def test_hft_filters_top_k_before_top_p():
    # top-k 2 renormalises 0.4/0.35 to 0.53/0.47, so top-p 0.5 keeps the best token alone; the
    # other order (top-p over all, then top-k) would keep two
    logits = logits_for([0.4, 0.35, 0.25])
    assert draws(TokenSamplerHft(), logits, top_k=2, top_p=0.5) == {0}
    assert TokenSamplerHft().get_sampler().names() == [
        "check",
        "rep_penalty",
        "temperature",
        "top_k_sampling",
        "top_p_sampling",
        "softmax",
    ]
    assert TokenSamplerIsok().get_sampler().names() == [
        "check",
        "rep_penalty",
        "temperature",
        "isolated_top_k_sampling_softmax",
    ]


def test_the_repetition_penalty_comes_before_temperature():
    # subtractive penalty then temperature: (0 - 1) / 0.5 = -2; the other order would give -1
    upto_filters = TokenSamplerBuilder(TokenSamplerHft.STEP_NAMES[:-1])
    params = {"temperature": 0.5, "past_tokens": [0, 0], "penalty": 1.0, "penalty_method": "subtractive"}
    assert upto_filters.process(torch.zeros(2), params).tolist() == [-2.0, 0.0]
    # multiplicative, transformers' rule: a positive logit is divided, a negative one multiplied
    params = {"temperature": 1.0, "past_tokens": [0, 1], "penalty": 2.0}
    assert upto_filters.process(torch.tensor([4.0, -1.0, 3.0]), params).tolist() == [2.0, -2.0, 3.0]
    # and it changes the greedy pick
    logits = torch.tensor([2.0, 1.9])
    assert TokenSamplerHft().do_sample(logits, temperature=0.0) == 0
    assert TokenSamplerHft().do_sample(logits, temperature=0.0, past_tokens=[0], penalty=2.0) == 1


@pytest.mark.parametrize("cls", [TokenSamplerHft, TokenSamplerIsok])
def test_near_zero_temperature_is_greedy_and_bad_values_are_repaired(cls):
    logits = torch.tensor([0.1, float("nan"), 3.0, float("-inf"), float("inf")])
    assert cls().do_sample(logits, temperature=0.0) == 4
    assert cls().do_sample(torch.tensor([0.1, float("nan"), 3.0]), temperature=1e-5) == 2
    assert cls().do_sample(logits, temperature=1.0, top_k=1) == 4


def test_hft_picks_what_the_engine_picks():
    vocab = torch.randn(300, generator=torch.Generator().manual_seed(5)) * 3
    cases = [
        SamplingParams(temperature=0.8, top_k=40, top_p=0.9),
        SamplingParams(temperature=1.5, top_k=None, top_p=0.5),
        SamplingParams(temperature=1.0, top_k=5, top_p=1.0, repetition_penalty=1.3),
        SamplingParams(temperature=0.7, top_k=0, top_p=None, repetition_penalty=0.5),
    ]
    past = [3, 17, 17, 250]
    for params in cases:
        for seed in range(5):
            ours = TokenSamplerHft(generator=torch.Generator().manual_seed(seed)).do_sample(
                vocab,
                top_k=params.top_k,
                top_p=params.top_p,
                temperature=params.temperature,
                past_tokens=past if params.repetition_penalty else None,
                penalty=params.repetition_penalty,
            )
            seen = torch.tensor(sorted(set(past)))
            engine = choose_token(vocab, params, seen, torch.Generator().manual_seed(seed))
            assert ours == engine, (params, seed)


def test_wrong_input_is_refused():
    with pytest.raises(ValueError, match="1-D"):
        TokenSamplerHft().do_sample(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="penalty_method"):
        TokenSamplerHft().do_sample(torch.zeros(5), past_tokens=[1], penalty=1.2, penalty_method="odd")
    with pytest.raises(ValueError, match="penalty"):
        TokenSamplerHft().do_sample(torch.zeros(5), past_tokens=[1], penalty=[1.2])
    with pytest.raises(ValueError, match="unknown sampler step"):
        TokenSamplerBuilder().append("beam")


def test_a_user_sampler_composes_its_own_pipeline():
    class GreedyAfterPenalty(TokenSamplerBase):
        def get_sampler(self) -> TokenSamplerBuilder:
            return TokenSamplerBuilder().append("rep_penalty").append("temperature")

    sampler = GreedyAfterPenalty()
    assert sampler.do_sample(torch.tensor([1.0, 2.0]), temperature=0.0) == 1
    with pytest.raises(TypeError, match="without picking"):
        sampler.do_sample(torch.tensor([1.0, 2.0]), temperature=1.0)
