"""Next-token choice with the seed's sampling semantics, for one row or a whole batch of rows.

The batched path applies each row's own parameters with tensor ops over the rows that need them
(rows without a repetition penalty, top-k or top-p skip that op), so one decode step samples every
running sequence at once. Rows with a seed draw from their own ``torch.Generator`` on the CPU, so a
seeded request samples the same tokens whatever else shares the batch and whatever the device.
"""

from __future__ import annotations

import torch

from .base import SamplingParams


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float, method: str
) -> torch.Tensor:
    """Multiplicative: divide positive / multiply negative logits of seen tokens (transformers' rule).
    Subtractive: subtract ``penalty`` from the logits of seen tokens."""
    if seen.numel() == 0:
        return logits
    picked = logits.gather(-1, seen)
    if method == "subtractive":
        picked = picked - penalty
    else:
        picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(-1, seen, picked)


def _top_k(logits: torch.Tensor, ks: list[int]) -> torch.Tensor:
    """Keep each row's ``ks[row]`` best logits (ties at the threshold survive, as in the seed)."""
    k_max = min(max(ks), logits.shape[-1])
    values = torch.topk(logits, k_max, dim=-1).values
    index = torch.tensor([min(k, k_max) - 1 for k in ks], device=logits.device).unsqueeze(-1)
    threshold = values.gather(-1, index)
    return logits.masked_fill(logits < threshold, float("-inf"))


def _top_p(logits: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
    """Nucleus filter per row: drop tokens once the mass before them exceeds that row's ``p``."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, -1)
    drop = probs.cumsum(-1) - probs > ps.unsqueeze(-1)
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def choose_token(
    logits: torch.Tensor, params: SamplingParams, seen: torch.Tensor, generator: torch.Generator | None
) -> int:
    """Greedy below temperature 1e-4 (as the seed), else temperature → top-k → top-p sampling."""
    logits = logits.float()
    if params.repetition_penalty is not None:
        logits = apply_repetition_penalty(
            logits, seen, params.repetition_penalty, params.repetition_penalty_method
        )
    if params.greedy:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if params.top_k:
        logits = _top_k(logits.unsqueeze(0), [params.top_k])[0]
    if params.top_p is not None and params.top_p < 1.0:
        logits = _top_p(logits.unsqueeze(0), torch.tensor([params.top_p], device=logits.device))[0]
    probs = torch.softmax(logits, -1)
    if generator is not None:
        probs = probs.cpu()
    return int(torch.multinomial(probs, 1, generator=generator))


def _penalise(logits: torch.Tensor, params: list[SamplingParams], seen: list[torch.Tensor | None]) -> None:
    rows = [i for i, p in enumerate(params) if p.repetition_penalty is not None and seen[i] is not None]
    if not rows:
        return
    index = torch.tensor(rows, device=logits.device)
    part = logits.index_select(0, index)
    mask = torch.stack([seen[i] for i in rows]).to(logits.device)
    penalty = torch.tensor([float(params[i].repetition_penalty) for i in rows], device=logits.device)
    penalty = penalty.to(logits.dtype).unsqueeze(-1)
    subtract = torch.tensor(
        [params[i].repetition_penalty_method == "subtractive" for i in rows], device=logits.device
    ).unsqueeze(-1)
    multiplied = torch.where(part > 0, part / penalty, part * penalty)
    penalised = torch.where(subtract, part - penalty, multiplied)
    logits[index] = torch.where(mask, penalised, part)


def choose_tokens(
    logits: torch.Tensor,
    params: list[SamplingParams],
    seen: list[torch.Tensor | None],
    generators: list[torch.Generator | None],
) -> list[int]:
    """One token per row of ``logits`` (rows × vocab), each with its own request's parameters.

    ``seen[row]`` is a boolean vocabulary mask of the tokens that row has seen (prompt and output),
    needed only for rows with a repetition penalty. Raises if any row fails (e.g. NaN probabilities);
    the caller then retries row by row with :func:`choose_token` to fail only that request.
    """
    logits = logits.float().clone()
    _penalise(logits, params, seen)
    chosen = torch.argmax(logits, dim=-1)
    sampled = [i for i, p in enumerate(params) if not p.greedy]
    if sampled:
        device = logits.device
        rows = torch.tensor(sampled, device=device)
        part = logits.index_select(0, rows)
        temperature = torch.tensor([params[i].temperature for i in sampled], device=device)
        part = part / temperature.unsqueeze(-1)
        with_k = [j for j, i in enumerate(sampled) if params[i].top_k]
        if with_k:
            sub = torch.tensor(with_k, device=device)
            part[sub] = _top_k(part.index_select(0, sub), [int(params[sampled[j]].top_k) for j in with_k])
        with_p = [j for j, i in enumerate(sampled) if params[i].top_p is not None and params[i].top_p < 1.0]
        if with_p:
            sub = torch.tensor(with_p, device=device)
            ps = torch.tensor([float(params[sampled[j]].top_p) for j in with_p], device=device)
            part[sub] = _top_p(part.index_select(0, sub), ps)
        probs = torch.softmax(part, -1)
        free = [j for j, i in enumerate(sampled) if generators[i] is None]
        if free:
            sub = torch.tensor(free, device=device)
            picks = torch.multinomial(probs.index_select(0, sub), 1).squeeze(-1)
            chosen[rows[sub]] = picks
        seeded = [j for j, i in enumerate(sampled) if generators[i] is not None]
        if seeded:
            cpu_probs = probs[torch.tensor(seeded, device=device)].cpu()
            for n, j in enumerate(seeded):
                pick = torch.multinomial(cpu_probs[n], 1, generator=generators[sampled[j]])
                chosen[sampled[j]] = int(pick)
    return chosen.tolist()
