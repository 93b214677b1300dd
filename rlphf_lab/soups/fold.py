"""The exact soup folded into the base weights: decoding at the base model's speed.

    W_soup = W + sum_i w_i s_i B_i A_i          s_i = alpha_i / r_i  (alpha_i / sqrt(r_i) with rsLoRA)

    W: (out, in) a base weight      A_i: (r_i, in)      B_i: (out, r_i)      w_i: the soup weights

The live soup (`set_soup_weights`) runs every adapter's LoRA branch on every token: six adapters,
six pairs of small matmuls per layer per token, ~0.6x the base model's tokens/s on a 2-core CPU.
Folding writes W_soup into each LoRA layer's base weight and switches the branches off, so a
forward pass costs what the base model's does. Per layer the k adapters are stacked once
(per set of loaded adapters) into two fp32 matrices,

    B_cat = [s_1 B_1, ..., s_k B_k]  (out, K)      A_cat = [A_1; ...; A_k]  (K, in)      K = sum_i r_i

so a re-fold after a slider move is one matmul per layer from the saved original weight:

    W_soup = W + (B_cat diag(w_1 1_{r_1}, ..., w_k 1_{r_k})) A_cat      (adapters with w_i = 0 left out)

(Caching the k products s_i B_i A_i instead costs k fp32 copies of every touched weight -- 2.5 GB
for 6 adapters on all linear layers of the 135M model -- and reading them all is slower than the
rank-K matmul.)

A slider moves one dimension: two adapters' weights change, the other four stay. The matmul is the
cost (rank K = 96 for six r=16 adapters: ~19 ms on a 2-core AVX2 CPU), so during a drag the soup is
split into the adapters that move (M) and the rest (R), and the rest's sum is kept:

    S      = W + (B_R diag(w_R)) A_R          fp32 (out, in), built once per drag
    W_soup = S + (B_M diag(w_M)) A_M          every further move of that slider: rank |M| r, not K

S is built when the same adapters change at two re-folds in a row (a drag); every later move that
changes only those adapters reuses it. Any other fold (the first, a new combination, every slider at
once, a single move of another slider) computes W + (B_cat diag(w)) A_cat directly. Either way the
delta is computed in fp32, added in fp32 and rounded once to the weight's dtype, and every fold starts
from the saved original (S is built from it too), never from the current weight, so thousands of
slider moves cannot drift; `unfold_soup` copies the originals back (bit-exact). Only the order of the
fp32 sums depends on which slider moved, well within the tolerance below.

Tolerance against the live soup (same weights): fp32 models agree to ~1e-5 in the logits (only the
order of the sums differs: (W + sum_i D_i) x against W x + sum_i s_i B_i (A_i x)); bf16 models agree
to bf16 rounding: each element of W_soup is rounded once (relative 2^-9), where the live path rounds
W x instead, so logits differ by ~1e-2 and greedy answers may part at near-ties.

How the branches are switched off: PEFT's own "merged" state, which means exactly "the delta is in
the base weight, skip the branch" (`LoraLayer.forward` runs only `base_layer` when merged). Each
layer's `merged_adapters` lists the soup's active adapters and their `scaling` stays w_i s_i (set by
`set_soup_weights`), so PEFT's bookkeeping describes the folded weight truthfully: if PEFT unmerges
on its own (`with model.disable_adapter():`, `set_adapter`), it subtracts this very delta and the
model is the live soup again (weights then within rounding of W, not bit-exact; the next fold or
unfold copies the originals back). `set_soup_weights` on a folded model unfolds first (exact copy),
then sets the live scales: the widget's sliders and every other caller stay correct.

Locking: like `set_soup_weights`, these functions change the model in place; callers that share the
model with a widget's generation thread hold `model_lock(model)` around fold and generation. The
`folded(...)` context manager holds it for its whole body.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

from .mix import _base_scale, check_weights, model_lock, set_soup_weights, soup_state, soup_weights


@dataclass
class FoldLayer:
    """One LoRA layer's fold data: the saved base weight and the adapters' stacked factors."""
    layer: object                           # the PEFT LoraLayer
    weight: torch.nn.Parameter              # its base_layer.weight (out, in), rewritten by a fold
    original: torch.Tensor                  # a copy of W saved before the first fold, weight's dtype (out, in)
    names: tuple                            # adapters of this layer, in stacking order
    columns: dict                           # {adapter: slice of its r_i columns of B_cat / rows of A_cat}
    B: torch.Tensor                         # B_cat = [s_1 B_1, ..., s_k B_k], fp32 (out, K)
    A: torch.Tensor                         # A_cat = [A_1; ...; A_k], fp32 (K, in)
    partial: torch.Tensor                   # S = W + (B_R diag(w_R)) A_R, fp32 (out, in): the adapters that did
                                            #   not move (see the module docstring); valid while FoldState.rest
    moving_factors: tuple | None = None     # (B_M, A_M): the moving adapters' columns of B_cat / rows of A_cat


@dataclass
class FoldState:
    """What `fold_soup_weights` needs, built once per set of loaded adapters; kept in model.__dict__."""
    key: tuple                              # the adapter names the factors were stacked for
    layers: list                            # [FoldLayer]
    scratch: torch.Tensor                   # one fp32 buffer of the largest (out * in), reused by every layer
    factors: tuple = ()                     # (tensor, version) of every LoRA A and B copied: a reloaded or
                                            #   retrained adapter changes it, and the copies are rebuilt
    folded: bool = False                    # True while W_soup is written into the base weights
    weights: dict = field(default_factory=dict)   # the weights folded in (after normalisation)
    rest: dict | None = None                # {adapter: w} summed into every layer's `partial`; None: not built
    moving: tuple = ()                      # the adapters added on top of `partial` at each re-fold
    last_changed: frozenset = frozenset()   # the adapters whose weights the last re-fold changed


def _check_layer(layer, module_name: str) -> None:
    from peft.tuners.lora import Linear

    if not isinstance(layer, Linear) or layer.fan_in_fan_out or getattr(layer, "lora_variant", None) \
            or any(getattr(layer, "lora_bias", {}).values()):
        raise ValueError(f"{module_name} is not a plain LoRA Linear layer (Conv1D/fan_in_fan_out, DoRA, LoRA bias "
                         f"or another layer type); folding supports W + s B A on Linear layers only. "
                         f"Use the live soup (`set_soup_weights`).")


def _factor_versions(state) -> tuple:
    """((tensor, in-place version), ...) of every LoRA factor: new tensors (a reloaded adapter) or tensors
    changed in place (an optimizer step, load_state_dict) make `_factors_current` false. The tensors
    themselves are kept, so identity is checked with `is` (an id could be reused by a new tensor)."""
    return tuple((factors[name].weight, factors[name].weight._version)
                 for layer, name, _ in state.layers for factors in (layer.lora_A, layer.lora_B))


def _factors_current(state, fold) -> bool:
    """True if every LoRA factor is the very tensor, at the very version, that the fold copied.
    Read through the modules' own dicts: nn.Module.__getattr__ for 720 factors costs milliseconds per re-fold."""
    if len(fold.factors) != 2 * len(state.layers):
        return False
    seen = iter(fold.factors)
    for layer, name, _ in state.layers:
        for factors in (layer.lora_A, layer.lora_B):
            module = factors._modules.get(name)
            w = None if module is None else module._parameters.get("weight")
            kept, version = next(seen)
            if w is not kept or w._version != version:
                return False
    return True


def fold_state(model) -> FoldState:
    """The saved originals and stacked factors; rebuilt only when adapters are added or deleted.

    Originals are saved once per base weight and carried over a rebuild (they are the base model's,
    whatever adapters are loaded), so loading another adapter never saves a folded weight as "original".
    """
    state = soup_state(model)
    fold = model.__dict__.get("_soup_fold")
    if fold is not None and fold.key == state.key and _factors_current(state, fold):
        return fold
    factors = _factor_versions(state)
    saved = {id(fl.weight): fl.original for fl in fold.layers} if fold is not None else {}
    by_layer: dict[int, list] = {}
    for layer, name, scale in state.layers:
        by_layer.setdefault(id(layer), [layer]).append((name, scale))
    named = {id(module): name for name, module in model.named_modules()}
    layers, largest = [], 0
    with torch.no_grad():
        for layer, *adapters in by_layer.values():
            _check_layer(layer, named.get(id(layer), "a LoRA layer"))
            weight = layer.get_base_layer().weight                                  # (out, in)
            original = saved.get(id(weight))
            if original is None:
                original = weight.detach().clone()                                   # exact restore by copy
            columns, start, Bs, As = {}, 0, [], []
            for name, _ in adapters:
                r = layer.lora_A[name].weight.shape[0]
                columns[name] = slice(start, start + r)
                start += r
                # s_i from the adapter's config (mix._base_scale), never from layer.scaling (the soup's)
                Bs.append(_base_scale(layer, name) * layer.lora_B[name].weight.detach().float())   # (out, r_i)
                As.append(layer.lora_A[name].weight.detach().float())                             # (r_i, in)
            layers.append(FoldLayer(layer=layer, weight=weight, original=original,
                                    names=tuple(n for n, _ in adapters), columns=columns,
                                    B=torch.cat(Bs, dim=1).contiguous(), A=torch.cat(As, dim=0).contiguous(),
                                    partial=torch.empty(weight.shape, dtype=torch.float32, device=weight.device)))
            largest = max(largest, weight.numel())
    device = layers[0].weight.device if layers else "cpu"
    new = FoldState(key=state.key, factors=factors, layers=layers, scratch=torch.empty(largest, dtype=torch.float32, device=device))
    if fold is not None:
        new.folded, new.weights = fold.folded, fold.weights     # (new.rest stays None: new factors)
    model.__dict__["_soup_fold"] = new
    return new


def _unfold_layers(fold: FoldState) -> None:
    """Copy every saved original back (bit-exact) and mark the layers unmerged: the live soup again."""
    with torch.no_grad():
        for fl in fold.layers:
            fl.weight.copy_(fl.original)
            fl.layer.merged_adapters = []
    fold.folded = False


def _same(a: float | None, b: float | None) -> bool:
    """A weight unchanged by a move of another slider. Normalising divides by a sum that rounds differently
    when another weight moves, so an unchanged side can differ in its last bits: 1e-9 relative (far below
    fp32's 6e-8 per element) counts as unchanged, and S keeps the weight it was built with."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def _scaled_factors(fl: FoldLayer, names, applied: dict, plans: dict, columns: tuple | None = None) -> tuple | None:
    """(B diag(w), A) over the columns of `names` in this layer, or None when none of them is here.
    columns: those columns (B_sub, A_sub) copied already (a drag's moving adapters), else selected here.

    plans caches, per layer layout and adapter list, the weight of every column and the columns to
    keep (one layout for the whole model, usually): a re-fold builds them once, not once per layer.
    """
    key = (fl.names, tuple(fl.columns[n].stop for n in fl.names), tuple(names))
    if key not in plans:
        use = [n for n in names if n in fl.columns]
        wk = idx = None
        if use:
            # (K',) the weight w_i of every column of the adapters used
            wk = torch.cat([torch.full((fl.columns[n].stop - fl.columns[n].start,), applied[n])
                            for n in use]).to(fl.B.device)
        if use and use != list(fl.names):         # a subset of this layer's adapters: keep their columns
            idx = torch.cat([torch.arange(fl.columns[n].start, fl.columns[n].stop) for n in use]).to(fl.B.device)
        plans[key] = (use, wk, idx)
    use, wk, idx = plans[key]
    if not use:
        return None
    if columns is None:
        columns = (fl.B, fl.A) if idx is None else (fl.B.index_select(1, idx), fl.A.index_select(0, idx))
    return columns[0] * wk, columns[1]


def _moving_columns(fl: FoldLayer, names) -> tuple | None:
    """(B_M, A_M): copies of the columns of B_cat and rows of A_cat that belong to `names` (in this layer),
    or None when none of them is in this layer."""
    spans = [torch.arange(fl.columns[n].start, fl.columns[n].stop) for n in names if n in fl.columns]
    if not spans:
        return None
    idx = torch.cat(spans).to(fl.B.device)
    return fl.B.index_select(1, idx), fl.A.index_select(0, idx)


def _write_weight(fold: FoldState, fl: FoldLayer, start: torch.Tensor, factors: tuple | None) -> None:
    """W <- start + B' A' (start: the original W or the partial sum S), summed in fp32, rounded once."""
    if factors is None:
        fl.weight.copy_(start)
    elif fl.weight.dtype == torch.float32 and start.dtype == torch.float32:
        torch.addmm(start, *factors, out=fl.weight.data)          # straight into the weight
    else:
        out, inp = fl.weight.shape
        buf = fold.scratch[: out * inp].view(out, inp)
        torch.mm(*factors, out=buf)                                 # delta (out, in) in fp32 ...
        buf.add_(start)                                             # ... + start in fp32 ...
        fl.weight.copy_(buf)                                        # ... rounded once to the weight's dtype


def fold_soup_weights(model, weights: dict[str, float], normalize: bool = True) -> dict[str, float]:
    """Write the exact soup W + sum_i w_i s_i B_i A_i into the base weights and skip the LoRA branches.

    weights, normalize: as for `set_soup_weights` (same checks, same errors; the model is untouched
        when they fail). Adapters left out contribute nothing.
    A re-fold (another slider position) recomputes every layer from the saved original weight, through
    the partial sum S of the adapters that did not move when only some moved (module docstring).
    Returns the weights folded in (all loaded adapters, zeros included). Callers sharing the model
    with another thread hold `model_lock(model)`.
    """
    state = soup_state(model)
    w = check_weights(weights, state.key, normalize)         # errors before anything is touched
    fold = fold_state(model)
    previous = dict(fold.weights) if fold.folded else None
    try:
        # The live bookkeeping first: the active set and every scale w_i s_i, through set_soup_weights, so
        # soup_weights(), PEFT's active adapters and its scalings all describe the soup. The layers are
        # marked unmerged beforehand (without copying W back: every weight is rewritten below), so that a
        # change of the active set neither warns nor makes PEFT subtract anything.
        for fl in fold.layers:
            fl.layer.merged_adapters = []
        fold.folded = False
        applied = set_soup_weights(model, w, normalize=False)   # w is already normalised: kept as it is
        active = [n for n in state.key if n in w]
        nonzero = [n for n in active if applied[n] != 0.0]
        # Which adapters move: reuse S while the others keep their weights; else the ones that changed now.
        changed = frozenset(n for n in nonzero if previous is None or not _same(applied[n], previous.get(n)))
        moving = [n for n in nonzero if n in fold.moving]
        rest = {n: applied[n] for n in nonzero if n not in fold.moving}
        reuse = fold.rest is not None and rest.keys() == fold.rest.keys() and all(
            _same(w_n, fold.rest[n]) for n, w_n in rest.items())
        build = False
        if not reuse:
            moving = [n for n in nonzero if n in changed]
            rest = {n: applied[n] for n in nonzero if n not in changed}
            # the same adapters moved twice in a row (a drag): S pays off from now on; one-off moves fold plainly
            build = bool(moving) and bool(rest) and changed == fold.last_changed
            fold.rest, fold.moving = (rest, tuple(moving)) if build else (None, ())
        fold.last_changed = changed
        use_partial = fold.rest is not None
        plans: dict[tuple, tuple] = {}
        with torch.no_grad():
            for fl in fold.layers:
                if not use_partial:                                     # W_soup = W + (B_cat diag(w)) A_cat
                    _write_weight(fold, fl, fl.original, _scaled_factors(fl, nonzero, applied, plans))
                else:
                    if build:                                           # S = W + (B_R diag(w_R)) A_R
                        fl.partial.copy_(fl.original)
                        factors = _scaled_factors(fl, list(rest), applied, plans)
                        if factors is not None:
                            fl.partial.addmm_(*factors)
                        # the moving adapters' columns, copied once per drag (zero weights included)
                        fl.moving_factors = _moving_columns(fl, fold.moving)
                    # W_soup = S + (B_M diag(w_M)) A_M
                    factors = (None if fl.moving_factors is None else
                               _scaled_factors(fl, fold.moving, applied, plans, columns=fl.moving_factors))
                    _write_weight(fold, fl, fl.partial, factors)
                # PEFT's merged state: forward runs base_layer alone; unmerge would subtract this very delta
                fl.layer.merged_adapters = [n for n in active if n in fl.columns]
    except BaseException:
        fold.rest, fold.moving, fold.last_changed = None, (), frozenset()
        _unfold_layers(fold)          # never leave half-folded weights behind: the live soup, exact W
        raise
    fold.folded, fold.weights = True, dict(applied)
    return dict(applied)


def unfold_soup(model) -> bool:
    """Put every base weight back exactly (a copy of the saved original, torch.equal) and return to the
    live soup at the same weights (branches on, scales w_i s_i). Returns False if nothing was folded.
    The saved originals and stacked factors are kept, so the next fold is fast (`fold_memory`)."""
    fold = model.__dict__.get("_soup_fold")
    if fold is None or not (fold.folded or any(fl.layer.merged for fl in fold.layers)):
        return False
    _unfold_layers(fold)
    return True


def is_folded(model) -> bool:
    """True while the soup is written into the base weights and PEFT skips the LoRA branches."""
    fold = model.__dict__.get("_soup_fold")
    return bool(fold is not None and fold.folded and fold.layers and all(fl.layer.merged for fl in fold.layers))


def fold_memory(model) -> dict[str, int]:
    """What the fold keeps: {"tensors": count, "bytes": total} of saved originals, stacked factors, partial
    sums S and scratch."""
    fold = model.__dict__.get("_soup_fold")
    tensors = ([] if fold is None else
               [t for fl in fold.layers for t in (fl.original, fl.B, fl.A, fl.partial)] + [fold.scratch])
    return {"tensors": len(tensors), "bytes": sum(t.numel() * t.element_size() for t in tensors)}


@contextmanager
def folded(model, weights: dict[str, float], normalize: bool = True) -> Iterator[dict[str, float]]:
    """Inside: the soup `weights`, folded (base-model speed), under `model_lock(model)`; yields the weights
    applied. Afterwards the model is as before: the same soup weights, folded again if it was folded."""
    with model_lock(model):
        was_folded = is_folded(model)
        before = {n: v for n, v in soup_weights(model).items() if n in soup_state(model).active}
        applied = fold_soup_weights(model, weights, normalize)
        try:
            yield applied
        finally:
            if was_folded and any(before.values()):
                fold_soup_weights(model, before, normalize=False)
            else:
                unfold_soup(model)
                if any(before.values()):
                    set_soup_weights(model, before, normalize=False)
