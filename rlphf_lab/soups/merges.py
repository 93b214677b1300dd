"""Merges that make a new adapter, and how far each one lands from the exact soup.

    name = average_ab_merge(model, weights)                 # the reference code's A/B average
    name = peft_weighted_merge(model, weights, "ties", density=0.5)   # PEFT's add_weighted_adapter
    logit_difference(model, tok, prompts, weights)          # exact soup vs A/B average, per token
    compare_merges(model, tok, prompts, weights)            # every method: delta gap, KL, answers, scores

The merged adapters are frozen; adding one never changes what the model computes until it is
activated (`use_adapter`), and the comparisons delete theirs again and leave the soup as it was.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch

from .delta import _module_name, ab_average_factors, adapter_delta, exact_delta, relative_gap
from ..scoring import Scorer
from .fronts import _instructions, score_answers
from .mix import adapter_names, check_weights, model_lock, own_scales, set_soup_weights, soup_weights, use_adapter

# PEFT's add_weighted_adapter methods that need `density` (the fraction of entries kept).
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties", "magnitude_prune", "ties_svd", "dare_linear_svd",
                   "dare_ties_svd", "magnitude_prune_svd")
MERGE_METHODS = ("exact", "ab_average", "cat", "linear", "ties", "dare_linear")


def _new_adapter_name(model, name: str | None, default: str) -> str:
    """Refuse a name that exists (PEFT would silently do nothing); number a default one instead."""
    existing = adapter_names(model)
    if name is not None:
        if name in existing:
            raise ValueError(f"An adapter named {name!r} already exists (PEFT would silently keep the old one). "
                             f"Choose another name, pass name=None for a fresh one, or `model.delete_adapter({name!r})`.")
        return name
    candidate, n = default, 2
    while candidate in existing:
        candidate, n = f"{default}_{n}", n + 1
    return candidate


def _freeze(model, name: str) -> None:
    for param_name, param in model.named_parameters():
        if f".{name}." in param_name:
            param.requires_grad_(False)


def average_ab_merge(model, weights: dict[str, float], name: str | None = None, normalize: bool = True) -> str:
    """The reference implementation's merge, as a new adapter: A = sum_i w_i A_i, B = sum_i w_i B_i
    (same r and alpha as the sources). Returns its name; activate it with `use_adapter(model, name)`.
    Not the exact soup: see `ab_average_delta`."""
    from peft.tuners.lora import LoraLayer

    factors = ab_average_factors(model, weights, normalize)
    name = _new_adapter_name(model, name, "ab_average")
    state_before = model.__dict__.get("_soup_state")
    active_before = list(state_before.active) if state_before else None
    model.add_adapter(name, copy.deepcopy(model.peft_config[next(iter(weights))]))   # same r, alpha, modules
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if isinstance(module, LoraLayer) and name in module.lora_A:
                A, B, _ = factors[_module_name(module_name)]
                module.lora_A[name].weight.copy_(A)
                module.lora_B[name].weight.copy_(B)
    _freeze(model, name)
    if active_before:   # adding an adapter must not change what the model computes now
        model.base_model.set_adapter(active_before, inference_mode=True)
    return name


def peft_weighted_merge(model, weights: dict[str, float], combination_type: str = "cat", name: str | None = None,
                        density: float | None = None, normalize: bool = True, seed: int | None = 0, **kwargs) -> str:
    """PEFT's `add_weighted_adapter`, for comparison; returns the new adapter's name.

    combination_type: "cat" (exact: the ranks are concatenated), "linear" (A and B combined
    separately with sqrt(w_i s_i) each: cross terms, like the reference code), "svd" (exact delta,
    truncated to rank r; slow), "ties", "dare_linear", "dare_ties", "magnitude_prune" (prune with
    `density` in (0, 1], then combine A and B separately). DARE drops entries at random: `seed`
    makes it repeat. A name that exists raises (PEFT would silently no-op); name=None picks a fresh one.
    """
    w = check_weights(weights, adapter_names(model), normalize)
    if combination_type in DENSITY_METHODS and density is None:
        raise ValueError(f"combination_type={combination_type!r} needs density (fraction of entries kept, 0-1], "
                         f"e.g. density=0.5.")
    name = _new_adapter_name(model, name, combination_type)
    state_before = model.__dict__.get("_soup_state")
    active_before = list(state_before.active) if state_before else None
    # add_weighted_adapter reads layer.scaling: the adapters' own scales while it runs, the soup's after.
    with own_scales(model), torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model.base_model.add_weighted_adapter(adapters=list(w), weights=list(w.values()), adapter_name=name,
                                              combination_type=combination_type, density=density, **kwargs)
    if name not in adapter_names(model):
        raise RuntimeError(f"PEFT did not create adapter {name!r}.")
    _freeze(model, name)
    if active_before:
        model.base_model.set_adapter(active_before, inference_mode=True)
    return name


@torch.no_grad()
def compare_merges(model, tokenizer, prompts, weights: dict[str, float], methods: Sequence[str] = MERGE_METHODS,
                   *, density: float = 0.5, scorer: Scorer | None = None, max_new_tokens: int = 64, temperature: float = 0.7,
                   seed: int | None = 0) -> list[dict]:
    """Every merge method on the same weights, prompts and seed; one row per method.

    "exact" is the live soup (`set_soup_weights`); "ab_average" the reference code's merge
    (`average_ab_merge`); the others PEFT's `add_weighted_adapter` (`peft_weighted_merge`,
    `density` for ties / dare_*). Each row: {method, delta_gap (mean over layers of
    ||delta - exact||_F / ||exact||_F), mean_kl and top1_agreement of the next-token
    distributions against the exact soup, response (first prompt), scores (mean per side)}.
    The merged adapters are deleted again and the soup is left as it was.
    """
    from ..models import generate

    instructions = _instructions(prompts)
    kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    rows = []
    with model_lock(model):
        before = soup_weights(model)
        exact = exact_delta(model, weights)
        set_soup_weights(model, weights)
        exact_logits, mask = _logits(model, tokenizer, instructions)
        logp = exact_logits.log_softmax(-1)[mask]
        created = []
        try:
            for method in methods:
                if method == "exact":
                    set_soup_weights(model, weights)
                    delta = exact
                else:
                    if method == "ab_average":
                        name = average_ab_merge(model, weights)
                    else:
                        name = peft_weighted_merge(model, weights, method,
                                                   density=density if method in DENSITY_METHODS else None)
                    created.append(name)
                    use_adapter(model, name)
                    delta = adapter_delta(model, name)
                logits, _ = _logits(model, tokenizer, instructions)
                logq = logits.log_softmax(-1)[mask]
                answers = generate(model, tokenizer, instructions, **kw)
                scores = score_answers(scorer, instructions, answers)
                gaps = relative_gap(exact, delta)
                rows.append({
                    "method": method,
                    "delta_gap": sum(gaps.values()) / len(gaps),
                    # KL(exact || merge) per token, averaged over the real tokens of all prompts
                    "mean_kl": (logp.exp() * (logp - logq)).sum(-1).mean().item(),
                    "top1_agreement": (exact_logits.argmax(-1) == logits.argmax(-1))[mask].float().mean().item(),
                    "response": answers[0],
                    **{k: sum(sc[k] for sc in scores) / len(scores) for k in scores[0]},
                })
        finally:   # back to the soup first: deleting the active adapter would make PEFT pick another
            restore = before if any(before.values()) else weights
            set_soup_weights(model, restore, normalize=not any(before.values()))
            for name in created:
                model.delete_adapter(name)
    return rows


@torch.no_grad()
def _logits(model, tokenizer, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from ..models import format_chat

    texts = [format_chat(tokenizer, p) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    logits = model(**enc).logits.float()               # (batch, seq, vocab)
    return logits, enc["attention_mask"].bool()         # mask: (batch, seq)


@torch.no_grad()
def logit_difference(model, tokenizer, prompts: Sequence[str], weights: dict[str, float],
                     normalize: bool = True) -> dict[str, float]:
    """Exact soup vs the reference code's A/B average on the same prompts (real tokens only).

    Returns max and mean |logit difference|, the mean KL(exact || A/B average) of the next-token
    distributions, and how often both pick the same most likely token. The model's weights are
    left as they were.
    """
    with model_lock(model):
        before = soup_weights(model)
        set_soup_weights(model, weights, normalize)
        exact, mask = _logits(model, tokenizer, prompts)
        name = average_ab_merge(model, weights, normalize=normalize)
        try:
            use_adapter(model, name)
            approx, _ = _logits(model, tokenizer, prompts)
        finally:   # back to the soup first: deleting the active adapter would make PEFT pick another
            set_soup_weights(model, before if any(before.values()) else weights,
                             normalize=False if any(before.values()) else normalize)
            model.delete_adapter(name)
    diff = (exact - approx).abs()[mask]                  # (real tokens, vocab)
    logp, logq = exact.log_softmax(-1)[mask], approx.log_softmax(-1)[mask]
    kl = (logp.exp() * (logp - logq)).sum(-1)            # KL(p || q) per token
    same = (exact.argmax(-1) == approx.argmax(-1))[mask]
    return {"max_abs_logit_diff": diff.max().item(), "mean_abs_logit_diff": diff.mean().item(),
            "mean_kl": kl.mean().item(), "top1_agreement": same.float().mean().item(), "tokens": int(mask.sum())}
