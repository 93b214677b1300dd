"""Delta maths: the exact soup's weight change against the reference code's A/B average, in fp32.

    exact soup    delta_W = sum_i w_i s_i B_i A_i                         (`exact_delta`)
    A/B average   delta_W = s (sum_i w_i B_i)(sum_j w_j A_j)              (`ab_average_delta`)
                          = s sum_i w_i^2 B_i A_i + s sum_{i != j} w_i w_j B_i A_j

The A/B average weights each adapter's own term by w_i^2 and adds cross terms B_i A_j that no
adapter learned; `relative_gap` measures how far it lands, `factor_similarity` why.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from .mix import _base_scale, adapter_names, check_weights


def _module_name(name: str) -> str:
    return name.removeprefix("base_model.model.")


def lora_factors(model, name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """{module: (A (r, in), B (out, r), s = alpha/r)} for one adapter, in fp32."""
    from peft.tuners.lora import LoraLayer

    if name not in adapter_names(model):
        raise ValueError(f"Unknown adapter {name!r}; loaded adapters: {adapter_names(model)}.")
    out = {}
    for module_name, module in model.named_modules():
        if isinstance(module, LoraLayer) and name in module.lora_A:
            A = module.lora_A[name].weight.detach().float()     # (r, in)
            B = module.lora_B[name].weight.detach().float()     # (out, r)
            out[_module_name(module_name)] = (A, B, _base_scale(module, name))
    return out


def exact_delta(model, weights: dict[str, float], normalize: bool = True) -> dict[str, torch.Tensor]:
    """Per layer, the exact soup's weight change: sum_i w_i s_i B_i A_i, (out, in) in fp32."""
    w = check_weights(weights, adapter_names(model), normalize)
    factors = {name: lora_factors(model, name) for name in w}
    deltas = {}
    for module in factors[next(iter(w))]:
        # delta_W = sum_i w_i s_i B_i A_i
        deltas[module] = sum(w[n] * factors[n][module][2] * factors[n][module][1] @ factors[n][module][0] for n in w)
    return deltas


def _common_rank_and_scale(model, names: Iterable[str]) -> tuple[int, float]:
    """The shared r and scale s (alpha / r, or alpha / sqrt(r) with rsLoRA) of adapters averaged A and B apart."""
    cfg = model.peft_config
    ranks = {n: cfg[n].r for n in names}
    alphas = {n: cfg[n].lora_alpha for n in names}
    rslora = {n: bool(cfg[n].use_rslora) for n in names}
    if len(set(ranks.values())) > 1 or len(set(alphas.values())) > 1 or len(set(rslora.values())) > 1:
        raise ValueError(f"Averaging A and B separately needs the same r, alpha and use_rslora for every adapter "
                         f"(r: {ranks}, alpha: {alphas}, use_rslora: {rslora}); use the exact soup "
                         f"(set_soup_weights) instead.")
    name = next(iter(ranks))
    r, alpha = ranks[name], cfg[name].lora_alpha
    return r, alpha / math.sqrt(r) if rslora[name] else alpha / r


def ab_average_factors(model, weights: dict[str, float], normalize: bool = True):
    """The reference code's merge, per layer: (sum_i w_i A_i, sum_i w_i B_i) and the shared s = alpha/r."""
    w = check_weights(weights, adapter_names(model), normalize)
    _, scale = _common_rank_and_scale(model, w)
    factors = {name: lora_factors(model, name) for name in w}
    out = {}
    for module in factors[next(iter(w))]:
        A = sum(w[n] * factors[n][module][0] for n in w)       # (r, in)
        B = sum(w[n] * factors[n][module][1] for n in w)       # (out, r)
        out[module] = (A, B, scale)
    return out


def ab_average_delta(model, weights: dict[str, float], normalize: bool = True) -> dict[str, torch.Tensor]:
    """Per layer, the delta of the A/B average: s (sum_i w_i B_i)(sum_j w_j A_j), (out, in) in fp32.

    Expanded, this is s sum_i w_i^2 B_i A_i + s sum_{i != j} w_i w_j B_i A_j: each adapter's own
    delta is weighted by w_i^2 (not w_i) and cross terms B_i A_j appear that no adapter learned.
    """
    return {m: s * B @ A for m, (A, B, s) in ab_average_factors(model, weights, normalize).items()}


def relative_gap(exact: dict[str, torch.Tensor], approx: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer ||approx - exact||_F / ||exact||_F: how far a merge is from the exact soup."""
    return {m: ((approx[m] - exact[m]).norm() / exact[m].norm().clamp_min(1e-12)).item() for m in exact}


def adapter_delta(model, name: str) -> dict[str, torch.Tensor]:
    """Per layer, one adapter's own weight change s B A, (out, in) in fp32."""
    return {m: s * B @ A for m, (A, B, s) in lora_factors(model, name).items()}


def factor_similarity(model, names: Sequence[str] | None = None) -> list[dict]:
    """For every pair of adapters, the cosine similarity of their A matrices and of their B matrices
    (flattened, averaged over layers). The A/B average's cross terms B_i A_j behave like the own
    terms B_i A_i only when A_j is close to A_i: same random init and little movement in training."""
    names = list(names or adapter_names(model))
    factors = {n: lora_factors(model, n) for n in names}
    cos = torch.nn.functional.cosine_similarity
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            layers = factors[a].keys() & factors[b].keys()
            ca = [cos(factors[a][m][0].flatten(), factors[b][m][0].flatten(), dim=0).item() for m in layers
                  if factors[a][m][0].shape == factors[b][m][0].shape]
            cb = [cos(factors[a][m][1].flatten(), factors[b][m][1].flatten(), dim=0).item() for m in layers
                  if factors[a][m][1].shape == factors[b][m][1].shape]
            rows.append({"pair": f"{a} / {b}", "cos(A_i, A_j)": sum(ca) / len(ca) if ca else float("nan"),
                         "cos(B_i, B_j)": sum(cb) / len(cb) if cb else float("nan")})
    return rows
