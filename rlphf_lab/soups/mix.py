"""The exact soup, applied live: every adapter active at once, each LoRA layer's scale set to w_i s_i.

    W_soup = W + sum_i w_i s_i B_i A_i          s_i = alpha_i / r_i

PEFT adds s_i B_i A_i x for every active adapter i, so a soup needs no new weights: activate the
adapters and set each one's scale to w_i times its own with PEFT's `LoraLayer.set_scale`. A
weight change is a few hundred float assignments, fast enough for a slider.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence


@dataclass
class SoupState:
    """What `set_soup_weights` needs, computed once per set of loaded adapters."""
    key: tuple                              # the adapter names this list was built for
    layers: list                            # [(lora_layer, adapter_name, base_scale)], base_scale = alpha/r
    layout: tuple = ()                      # and their (r, alpha, rsLoRA, target modules): the scales depend on them
    active: tuple = ()                      # adapters active in the forward pass now
    weights: dict = field(default_factory=dict)   # the current weights (after normalisation)


def _base_scale(layer, name: str) -> float:
    """LoRA's own scale s = alpha / r (alpha / sqrt(r) with rsLoRA), from the layer's config, never
    from `layer.scaling` (which the soup overwrites): repeated weight changes cannot drift."""
    r, alpha = layer.r[name], layer.lora_alpha[name]
    return alpha / math.sqrt(r) if layer.use_rslora.get(name, False) else alpha / r


def soup_state(model) -> SoupState:
    """The precomputed (layer, adapter, base scale) list; rebuilt only when adapters are added or deleted."""
    from peft.tuners.lora import LoraLayer

    config = getattr(model, "peft_config", None)
    if not config:
        raise ValueError("This model has no LoRA adapters; load some with `load_adapters(model, {...})`.")
    # rebuilt when the names or the layout change: an adapter deleted and loaded again under its name
    # with another r or alpha must not keep its old scale
    key = tuple(config)
    layout = tuple((c.r, c.lora_alpha, bool(c.use_rslora), str(sorted(c.target_modules or []))) for c in config.values())
    state = model.__dict__.get("_soup_state")
    if state is not None and state.key == key and state.layout == layout:
        return state
    layers = [(module, name, _base_scale(module, name))
              for module in model.modules() if isinstance(module, LoraLayer)
              for name in module.lora_A]
    new = SoupState(key=key, layers=layers, layout=layout)
    if state is not None:   # keep the weights of adapters that are still there
        new.weights = {n: w for n, w in state.weights.items() if n in key}
    model.__dict__["_soup_state"] = new
    return new


def adapter_names(model) -> list[str]:
    """Names of the adapters loaded in the model, in load order."""
    return list(getattr(model, "peft_config", {}) or {})


def check_weights(weights: dict[str, float], loaded: Sequence[str], normalize: bool = True) -> dict[str, float]:
    """Validate soup weights and return them as floats (divided by their sum when `normalize`).

    Raises ValueError for: not a dict, unknown adapter names, non-numbers, NaN/inf, negative
    values, or weights that are all zero.
    """
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"weights must be a non-empty dict {{adapter: weight}}; loaded adapters: {list(loaded)}.")
    unknown = [k for k in weights if k not in loaded]
    if unknown:
        raise ValueError(f"Unknown adapter(s) {unknown}: not loaded in this model. Loaded adapters: {list(loaded)}.")
    out = {}
    for name, w in weights.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise ValueError(f"Weight for {name} is {w!r}, not a number.") from None
        if not math.isfinite(w):
            raise ValueError(f"Weight for {name} is {w}; weights must be finite numbers >= 0.")
        if w < 0:
            raise ValueError(f"Weight for {name} is negative ({w}); soup weights must be >= 0 "
                             f"(to move away from a side, raise the weight of its opposite).")
        out[name] = w
    peak = max(out.values())
    if peak <= 0:
        raise ValueError(f"All weights are zero ({out}); give at least one adapter a positive weight.")
    if normalize:
        # divide by the largest weight first: the sum of huge weights (1e308 + 1e308) would overflow to inf
        scaled = {name: w / peak for name, w in out.items()}
        total = sum(scaled.values())
        out = {name: w / total for name, w in scaled.items()}
    return out


def set_soup_weights(model, weights: dict[str, float], normalize: bool = True) -> dict[str, float]:
    """Make the model the exact soup W + sum_i w_i s_i B_i A_i, in place, in about a millisecond.

    weights: {adapter name: w_i >= 0}. Adapters named here are active (in every forward pass),
        those left out are switched off. A weight of 0 keeps an adapter active at scale 0: it adds
        exactly nothing, and a slider that returns from 0 needs no switch (switching the active set
        walks the whole model in PEFT, ~5 ms; changing scales alone takes ~0.05 ms).
    normalize=True (default): the weights are divided by their sum, a convex mixture -- the paper's
        "average" of the chosen adapters ({"P1A": 1, "P2B": 1} -> 1/2 each).
    normalize=False: the weights are used as given ({"P2B": 2.0} doubles that adapter's delta).
    Returns the weights applied (all loaded adapters, zeros included). Holds model_lock(model) while
    it changes the mix, so it waits for a generation running in another thread (a widget's).
    """
    with model_lock(model):       # never while another thread generates with the model (a widget)
        state = soup_state(model)
        w = check_weights(weights, state.key, normalize)
        fold = model.__dict__.get("_soup_fold")
        if fold is not None and fold.folded:
            # A folded model (soups.fold) holds a soup in its base weights: copy the originals back first
            # (exact), then the scales below make it the live soup at the new weights.
            from .fold import unfold_soup
            unfold_soup(model)
        active = tuple(name for name in state.key if name in w)
        if active != state.active:
            # All named adapters take part in every forward pass; inference_mode keeps them frozen.
            model.base_model.set_adapter(list(active), inference_mode=True)
            state.active = active
        for layer, name, _ in state.layers:
            # scale_i = w_i * alpha_i / r_i, so the layer adds sum_i w_i s_i B_i A_i x. PEFT's set_scale
            # computes (w_i * alpha_i) / r_i: for r a power of two (every adapter of the lab: r = 8, 16) that
            # is the same double as w_i * (alpha_i / r_i), since dividing by 2^k rounds nothing.
            layer.set_scale(name, w.get(name, 0.0))
        state.weights = {name: w.get(name, 0.0) for name in state.key}
        return dict(state.weights)


@contextmanager
def own_scales(model) -> Iterator[None]:
    """Inside: every adapter at its own scale alpha / r (what PEFT's merges read from `layer.scaling`);
    afterwards each layer's scale is exactly what it was (the soup's, whatever set it)."""
    layers = soup_state(model).layers
    saved = [(layer, name, layer.scaling[name]) for layer, name, _ in layers]
    for layer, name, _ in layers:
        layer.set_scale(name, 1.0)
    try:
        yield
    finally:
        for layer, name, scale in saved:
            layer.scaling[name] = scale        # the saved value itself: PEFT has no setter for a raw scale


def soup_weights(model) -> dict[str, float]:
    """The weights the soup uses now (after normalisation)."""
    return dict(soup_state(model).weights)


def use_adapter(model, name: str) -> None:
    """Only one adapter, at its own scale (a soup with weight 1 on it)."""
    set_soup_weights(model, {name: 1.0})


def model_lock(model) -> threading.RLock:
    """One lock per model: hold it while setting soup weights and generating, so that a widget's
    background generation and a notebook cell never change the weights under each other."""
    lock = model.__dict__.get("_soup_lock")
    if lock is None:
        lock = model.__dict__.setdefault("_soup_lock", threading.RLock())
    return lock
