"""Mixing in outputs: combine the adapters' next-token log-probabilities at every decoding step (MOD).

Weight mixing (mix.py) builds one model, W + sum_i w_i s_i B_i A_i, and decodes with it. MOD
(Shi et al. 2024, "Decoding-Time Language Model Alignment with Multiple Objectives") leaves the
policies apart and mixes what they *say*: at every token each policy i gives its log-probabilities
for the next token, and the mixture decodes from their weighted sum,

    score(y_t) = sum_i w_i log p_i(y_t | x, y_<t)              w_i >= 0, sum_i w_i = 1 by default
    p_mix(y_t | x, y_<t) = softmax_y(score)                     a weighted geometric mean, renormalised

then greedy (argmax) or sampled (temperature, top-p) from p_mix, token by token, until EOS.

Shapes: B prompts, k adapters with w_i > 0, V the vocabulary.
    one forward of k*B rows (row a*B + b = prompt b under adapter a)  -> logits (k*B, V)
    log-softmax per row, reshaped                                      -> log p_i      (k, B, V)
    weighted sum over adapters, renormalised                           -> log p_mix    (B, V)

Cost: a weight soup is one forward per token (plus k low-rank branches per LoRA layer); mixing
outputs is k forwards per token, each adapter with its own KV cache. Here the k forwards are one
batched forward with a different adapter per row (PEFT's `adapter_names=`), which on a CPU is
several times faster than switching adapters and running them one after another (decoding one
row is bound by reading the weights, so k rows cost much less than k passes). Adapters with
w_i = 0 are never run. No training and no merged weights: any weights, changed at any token.

    from rlphf_lab import soups
    soups.generate_mixed_outputs(model, tok, ["Why is the sky blue?"], {"P2A": 0.5, "P3A": 0.5})
    for piece in soups.stream_mixed_outputs(model, tok, "Why is the sky blue?", {"P2A": 0.5, "P3A": 0.5}):
        print(piece, end="")

Every forward runs under `model_lock(model)` with each adapter at its own scale alpha / r
(`own_scales`); afterwards the LoRA scales and active adapters are exactly as they were, so a
weight soup set on the model is untouched. Sampling draws from a generator seeded with `seed`
(`seed + b` for batch b), as `models.generate` seeds torch: with one adapter at weight 1 the
answer is that adapter's own answer, greedy or sampled.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from .mix import adapter_names, check_weights, model_lock, own_scales, soup_state


def positive_weights(model, weights: dict[str, float], normalize: bool = True) -> dict[str, float]:
    """The checked weights of the adapters that take part (w_i > 0), in load order.

    Same checks as the weight soup (`check_weights`): known adapter names, finite numbers >= 0,
    not all zero; divided by their sum when `normalize`.
    """
    loaded = adapter_names(model)
    if not loaded:
        raise ValueError("This model has no LoRA adapters; load some with `load_adapters(model, {...})`.")
    checked = check_weights(weights, loaded, normalize)
    return {name: checked[name] for name in loaded if checked.get(name, 0.0) > 0}


def check_not_folded(model) -> None:
    """Raise ValueError when a soup is folded (merged) into the base weights: the adapters' own
    branches, which output mixing runs, would then be added on top of the soup."""
    if any(layer.merged for layer, _, _ in soup_state(model).layers):
        raise ValueError("This model has a soup folded (merged) into its base weights; mixing outputs runs each "
                         "adapter's own LoRA branch on the base weights. Unfold it first: `soups.unfold_soup(model)` "
                         "(or `set_soup_weights`, which unfolds), or `model.unmerge_adapter()` for a PEFT merge.")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions 0, 1, ... counted over real tokens only (left padding sits at position 0), as HF generate does."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


@torch.no_grad()
def adapter_next_token_logprobs(model, input_ids: torch.Tensor, names: Sequence[str], *,
                                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                                cache=None) -> tuple[torch.Tensor, object]:
    """log p_i(y_t | x, y_<t) of every adapter in `names`: one forward, one adapter per block of rows.

    input_ids: (B, T) the prompts, or (B, 1) the last tokens when `cache` holds the earlier ones.
    attention_mask, position_ids: (B, T_total) and (B, T), for the B prompts (repeated here for the k adapters).
    cache: None for the first step, then the cache this function returned (k*B rows, one KV cache per adapter and prompt).
    Returns (log-probs (k, B, V) in fp32, cache).
    """
    k, (batch, _) = len(names), input_ids.shape
    rows = [name for name in names for _ in range(batch)]             # row a*B + b: prompt b, adapter a
    repeat = lambda t: None if t is None else t.repeat(k, 1)          # noqa: E731   (B, .) -> (k*B, .)
    with model_lock(model), own_scales(model):                        # each adapter at its own scale alpha / r
        check_not_folded(model)
        out = model(input_ids=repeat(input_ids), attention_mask=repeat(attention_mask),
                    position_ids=repeat(position_ids), cache=cache, use_cache=True, logits_to_keep=1,
                    adapter_names=rows)
    # fp32 before the log-softmax: bf16 logits would round the log-probabilities (spacing up to 0.125)
    logprobs = out.logits[:, -1].float().log_softmax(-1)              # (k*B, V)
    return logprobs.view(k, batch, -1), out.cache


def mix_logprobs(logprobs: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """MOD's mixture: log_softmax(sum_i w_i log p_i), from log-probs (k, B, V) and k weights; returns (B, V)."""
    w = torch.as_tensor(list(weights), dtype=logprobs.dtype, device=logprobs.device)
    # score(y) = sum_i w_i log p_i(y | x, y_<t)
    score = (w[:, None, None] * logprobs).sum(0)                      # (B, V)
    # p_mix = softmax(score): subtracting log sum_y exp(score) renormalises the weighted geometric mean
    return score.log_softmax(-1)


def mixed_next_token_logprobs(model, input_ids: torch.Tensor, weights: dict[str, float], *,
                              attention_mask: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
    """log p_mix(y_t | x, y_<t) for the next token after each row of input_ids (B, T): returns (B, V).

    One step, no cache (generation keeps the caches: `generate_mixed_outputs`). Only adapters with
    w_i > 0 run.
    """
    w = positive_weights(model, weights, normalize)
    position_ids = None if attention_mask is None else position_ids_from_mask(attention_mask)
    logprobs, _ = adapter_next_token_logprobs(model, input_ids, list(w), attention_mask=attention_mask,
                                              position_ids=position_ids)
    return mix_logprobs(logprobs, list(w.values()))


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus sampling: keep the most likely tokens whose probabilities sum to top_p, the rest -inf.

    Written as Hugging Face's TopPLogitsWarper does it (sort ascending, drop the tail whose mass is
    <= 1 - top_p, always keep the top token), so the same seed draws the same tokens.
    """
    if top_p >= 1:
        return scores
    ordered, order = scores.sort(dim=-1, descending=False)
    drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
    drop[..., -1:] = False
    return scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


def pick_next_tokens(logprobs: torch.Tensor, *, temperature: float, top_p: float,
                     generator: torch.Generator | None) -> torch.Tensor:
    """Next token ids (B,) from log p_mix (B, V): argmax when temperature is 0, else a draw from
    softmax(log p_mix / temperature) after top-p."""
    if temperature == 0:
        return logprobs.argmax(-1)
    probs = top_p_filter(logprobs / temperature, top_p).softmax(-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


@torch.no_grad()
def mixed_token_steps(model, tokenizer, texts: Sequence[str], weights: dict[str, float], *, max_new_tokens: int,
                      temperature: float, top_p: float, seed: int | None, normalize: bool = True,
                      should_stop: Callable[[], bool] | None = None,
                      prefix_ids: Sequence[int] = ()) -> Iterator[torch.Tensor]:
    """Decode chat-formatted `texts` with the output mixture: yields the next token ids (B,) at each step.

    A finished row (it produced EOS) gets the pad token from then on; decoding stops when every row
    has finished, after max_new_tokens, or when `should_stop()` says so (checked before each token).
    The model lock is held per step, so a cell or widget may use the model between two tokens.
    prefix_ids: answer tokens already written (one text only), fed after the prompt: decoding goes on from them.
    """
    w = positive_weights(model, weights, normalize)
    names, values = list(w), list(w.values())
    device = next(model.parameters()).device
    generator = None
    if temperature > 0:
        generator = torch.Generator(device=device)
        if seed is not None:
            generator.manual_seed(seed)                               # the same stream torch.manual_seed(seed) gives
        else:
            generator.seed()
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    input_ids, mask = enc["input_ids"], enc["attention_mask"]         # (B, T), left padded
    if len(prefix_ids):
        if len(texts) != 1:
            raise ValueError("prefix_ids continues one answer: give one text.")
        input_ids = torch.cat([input_ids, torch.tensor([list(prefix_ids)], device=device)], dim=1)
        mask = torch.ones_like(input_ids)                             # (1, prompt + prefix)
    positions = position_ids_from_mask(mask)
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    cache = None
    for _ in range(max_new_tokens):
        if should_stop is not None and should_stop():
            return
        logprobs, cache = adapter_next_token_logprobs(model, input_ids, names, attention_mask=mask,
                                                      position_ids=positions, cache=cache)
        tokens = pick_next_tokens(mix_logprobs(logprobs, values), temperature=temperature, top_p=top_p,
                                  generator=generator)
        tokens = tokens.masked_fill(done, tokenizer.pad_token_id)     # (B,)
        yield tokens
        done |= tokens == tokenizer.eos_token_id
        if done.all():
            return
        input_ids = tokens[:, None]                                   # (B, 1): the caches hold the rest
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = positions[:, -1:] + 1


def generate_mixed_outputs(model, tokenizer, instructions: Sequence[str] | str, weights: dict[str, float],
                           preference=None, *, max_new_tokens: int = 128, temperature: float = 0.7, top_p: float = 0.9,
                           seed: int | None = 0, batch_size: int = 8, normalize: bool = True,
                           progress: bool = False) -> list[str]:
    """One answer per instruction from the output mixture of the adapters in `weights` (MOD).

    The same settings as `models.generate` (chat template, `preference` appended as a prompt,
    temperature 0 = greedy, batch b seeded with seed + b). weights: {adapter: w_i >= 0}, divided by
    their sum unless normalize=False; adapters with weight 0 or left out are not run.
    """
    from tqdm.auto import tqdm

    from ..models import _as_list, _check_count, check_sampling, format_chat

    if isinstance(instructions, str):
        instructions = [instructions]
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    _check_count("batch_size", batch_size)
    positive_weights(model, weights, normalize)                       # bad weights fail before any work
    prefs = _as_list(preference, len(instructions), "preference")
    texts = [format_chat(tokenizer, ins, p) for ins, p in zip(instructions, prefs)]
    answers: list[str] = []
    with model_lock(model):                                           # one answer set at a time, as generate in fronts
        for b, start in enumerate(tqdm(range(0, len(texts), batch_size), desc="generate (mixed outputs)",
                                       disable=not progress)):
            steps = mixed_token_steps(model, tokenizer, texts[start:start + batch_size], weights,
                                      max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                      seed=None if seed is None else seed + b, normalize=normalize)
            new_tokens = torch.stack(list(steps), dim=1)              # (batch, new)
            answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [a.strip() for a in answers]


def stream_mixed_outputs(model, tokenizer, instruction: str, weights: dict[str, float], preference=None, *,
                         max_new_tokens: int = 128, temperature: float = 0.7, top_p: float = 0.9,
                         seed: int | None = 0, normalize: bool = True,
                         should_stop: Callable[[], bool] | None = None, prefix_ids: Sequence[int] = ()) -> Iterator[str]:
    """Yield the output mixture's answer piece by piece, like `models.stream_generate` (for widgets).

    "".join(stream_mixed_outputs(m, tok, x, w, ...)).strip() == generate_mixed_outputs(m, tok, [x], w, ...)[0].
    `should_stop()` is checked before each token; closing the iterator stops decoding. Decoding runs
    in the caller's thread, one locked forward per token. prefix_ids: go on from these answer tokens
    (their text is not yielded again; `soups.remix`).
    """
    from ..models import StopLatch, check_sampling, decode_pieces, format_chat

    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    positive_weights(model, weights, normalize)
    stop = StopLatch(should_stop)
    steps = mixed_token_steps(model, tokenizer, [format_chat(tokenizer, instruction, preference)], weights,
                              max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                              normalize=normalize, should_stop=stop, prefix_ids=prefix_ids)
    yield from decode_pieces(tokenizer, (int(tokens[0]) for tokens in steps), prefix_ids, stopped=lambda: stop.hit)
