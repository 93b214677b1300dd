"""Personalized Soups: mix LoRA policies, one per preference side, at inference time.

Each PPO policy is the base model plus a LoRA delta on some weight matrices W (q_proj, v_proj):

    W_i = W + s_i B_i A_i          A_i: (r, in), B_i: (out, r), s_i = alpha_i / r_i

The exact soup of k adapters with weights w is the weighted sum of their deltas:

    W_soup = W + sum_i w_i s_i B_i A_i

PEFT computes exactly this when all k adapters are active at once (each layer adds
s_i B_i A_i x for every active adapter i), so a soup needs no new weights: we activate all
adapters and set each adapter's scale per LoRA layer to w_i * s_i. Changing the weights is
a few hundred float assignments, fast enough for a slider.

    model, tok = load_policy()
    model = load_adapters(model, {"P1A": "adapters/P1A", "P2B": "adapters/P2B", "P3A": "adapters/P3A"})
    set_soup_weights(model, combination_weights("P1A+P2B+P3A"))    # the paper's soup, exact
    generate(model, tok, ["Why is the sky blue?"])

The reference code averaged A and B separately instead, which is not the same thing
(`average_ab_merge`, `ab_average_delta` show the cross terms B_i A_j), and PEFT's
`add_weighted_adapter` offers more merges (`peft_weighted_merge`).
"""
from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ..config import DATA_DIR
from ..preferences import DIMENSIONS, SIDES, get_preference, parse_combination

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# The trained adapters shipped with the lab: data/adapters/<name>/adapter (PEFT folders), one per
# preference side (Personalized Soups) plus the single-policy baselines of notebook 05.
SHIPPED_DIR = DATA_DIR / "adapters"
BASELINE_ADAPTERS = ("prompted-morl", "rlhf", "morlaif", "multitask")
# PEFT's add_weighted_adapter methods that need `density` (the fraction of entries kept).
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties", "magnitude_prune", "ties_svd", "dare_linear_svd",
                   "dare_ties_svd", "magnitude_prune_svd")


# --------------------------------------------------------------------------------------------
# Loading several adapters into one model
# --------------------------------------------------------------------------------------------

def read_adapter_config(path: str | Path) -> dict:
    """The adapter_config.json of a PEFT adapter folder, with a clear error when it is missing or not JSON."""
    from ..data import read_json

    file = Path(path) / ADAPTER_CONFIG
    if not file.is_file():
        raise ValueError(f"{path} is not a PEFT adapter folder (no {ADAPTER_CONFIG}). "
                         f"Pass folders written by `model.save_pretrained(...)` on a PeftModel.")
    return read_json(file, restore_hint(path))


def restore_hint(folder: str | Path) -> str:
    """How to get a damaged adapter back: the command in its provenance record, or git."""
    folder = Path(folder)
    command = None
    try:
        command = json.loads(folder.with_name(folder.name + ".provenance.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        pass
    retrain = f"retrain it with `{command}`" if command else "retrain it with the command that made it"
    return f"{retrain}, or restore it from git (`git checkout -- {folder}`) if it is a shipped file"


def _is_target(module_name: str, target_modules) -> bool:
    """PEFT's rule: a list matches a module name or its last dotted parts, a string is a full regex."""
    import re

    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, module_name) is not None
    return any(module_name == t or module_name.endswith("." + t) for t in target_modules or [])


def expected_lora_shapes(model, config: dict) -> dict[str, tuple[int, int]] | None:
    """{weight key in adapter_model.safetensors: shape} that `config` implies for `model`:
    lora_A (r, in_features) and lora_B (out_features, r) for every targeted Linear layer.

    None when the config uses options this check does not model (rank patterns, layer selection,
    modules_to_save, biases, non-Linear targets); then only the file itself is checked.
    """
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from torch import nn

    plain = not any(config.get(k) for k in ("rank_pattern", "layers_to_transform", "layers_pattern", "exclude_modules",
                                            "modules_to_save", "lora_bias", "target_parameters", "layer_replication",
                                            "trainable_token_indices")) and config.get("bias", "none") == "none"
    if not plain or not isinstance(config.get("r"), int):
        return None
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    r, shapes = config["r"], {}
    for name, module in base.named_modules():
        if ".base_layer" in name or "lora_" in name or not _is_target(name, config.get("target_modules")):
            continue
        if isinstance(module, LoraLayer):
            module = module.get_base_layer()
        if not isinstance(module, nn.Linear):
            return None
        shapes[f"base_model.model.{name}.lora_A.weight"] = (r, module.in_features)
        shapes[f"base_model.model.{name}.lora_B.weight"] = (module.out_features, r)
    return shapes


def read_adapter_weights(path: str | Path, config: dict | None = None, model=None) -> dict[str, torch.Tensor]:
    """The tensors of an adapter folder's adapter_model.safetensors, checked before anything loads them:
    the file exists and is readable, every value is finite, and (given the model) its keys and shapes
    are those its adapter_config.json implies. Each problem is a ValueError naming the file and the fix."""
    from ..data import read_safetensors

    folder = Path(path)
    file, hint = folder / ADAPTER_WEIGHTS, restore_hint(folder)
    if not file.is_file():
        raise ValueError(f"{folder} has no {ADAPTER_WEIGHTS} (the adapter's weights); {hint}.")
    tensors = read_safetensors(file, hint)
    expected = expected_lora_shapes(model, config or read_adapter_config(folder)) if model is not None else None
    if expected is not None:
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{file} does not match its {ADAPTER_CONFIG} on this model: {len(missing)} LoRA weights "
                             f"missing (e.g. {missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]}); "
                             f"renamed keys or a file from another adapter; {hint}.")
        wrong = [(k, tuple(tensors[k].shape), want) for k, want in expected.items() if tuple(tensors[k].shape) != want]
        if wrong:
            key, got, want = wrong[0]
            raise ValueError(f"{file}: {key} has shape {got}, but r={config['r'] if config else '?'} in "
                             f"{ADAPTER_CONFIG} and this model need {want} ({len(wrong)} tensors differ): the config "
                             f"and the weights do not belong together; {hint}.")
    return tensors


def _base_name(name_or_path: str | None) -> str | None:
    """Compare base models by their last path component: the same model cached in two places matches."""
    return Path(str(name_or_path).rstrip("/")).name if name_or_path else None


def check_compatible(configs: dict[str, dict], model=None) -> None:
    """Raise ValueError unless all adapters are plain LoRA on the same base model and the same modules.

    Different ranks r (or alphas) are fine for the exact soup; `ab_average_delta` needs equal ones.
    """
    codes = list(configs)
    for code, cfg in configs.items():
        if cfg.get("peft_type", "LORA") != "LORA":
            raise ValueError(f"Adapter {code} is a {cfg.get('peft_type')} adapter; soups mix LoRA adapters only.")
        if cfg.get("use_dora"):
            raise ValueError(f"Adapter {code} uses DoRA, whose delta is not B A; soups need plain LoRA adapters.")
    # Same base model (when the adapters say which).
    bases = {c: _base_name(cfg.get("base_model_name_or_path")) for c, cfg in configs.items()}
    known = {c: b for c, b in bases.items() if b}
    if len(set(known.values())) > 1:
        listing = ", ".join(f"{c}: {b}" for c, b in known.items())
        raise ValueError(f"The adapters were trained on different base models ({listing}); a soup needs one base "
                         f"model. Retrain or drop the adapters that do not match.")
    model_base = _base_name(getattr(getattr(model, "config", None), "_name_or_path", None)) if model is not None else None
    if model_base and known and model_base not in known.values():
        listing = ", ".join(f"{c}: {b}" for c, b in known.items())
        raise ValueError(f"The adapters belong to another base model ({listing}) than the model passed in "
                         f"({model_base}). Load the matching base model first.")
    # Same target modules: otherwise the adapters change different matrices.
    targets = {c: cfg.get("target_modules") for c, cfg in configs.items()}
    norm = {c: sorted(t) if isinstance(t, (list, tuple, set)) else t for c, t in targets.items()}
    first = codes[0]
    for c in codes[1:]:
        if norm[c] != norm[first]:
            raise ValueError(f"Adapters {first} and {c} target different modules ({norm[first]} vs {norm[c]}); "
                             f"train all adapters with the same LoraConfig(target_modules=...).")


def load_adapters(model, adapter_dirs: dict[str, str | Path]):
    """Load several PEFT LoRA folders into one PeftModel, one adapter per name (e.g. side code).

    `model` is the base model (or a PeftModel that already holds other adapters). Every folder is
    checked before the model is touched: configs (same base model, same target modules, plain
    LoRA) and weights (readable, finite, the keys and shapes the config implies). Loading is
    all-or-nothing: if anything fails, the model is left exactly as it was. Afterwards every
    adapter is active with equal weight (the paper's plain average, exact); call
    `set_soup_weights` to change it.
    """
    from peft import PeftModel

    if not adapter_dirs:
        raise ValueError("adapter_dirs is empty: pass {name: folder}, e.g. {'P1A': 'adapters/P1A'}.")
    configs = {}
    for name, path in adapter_dirs.items():
        try:
            configs[name] = read_adapter_config(path)
            read_adapter_weights(path, configs[name], model)
        except ValueError as err:
            raise ValueError(f"Adapter {name}: {err}") from None
    check_compatible(configs, model)
    existing = list(getattr(model, "peft_config", {}) or {})
    clash = [n for n in adapter_dirs if n in existing]
    if clash:
        raise ValueError(f"Adapters named {clash} are already loaded in this model; use other names or "
                         f"`model.delete_adapter(name)` first.")
    names = list(adapter_dirs)
    undo = _undo_load(model)
    try:
        if isinstance(model, PeftModel):
            for name in names:
                model.load_adapter(str(adapter_dirs[name]), adapter_name=name, is_trainable=False)
        else:
            model = PeftModel.from_pretrained(model, str(adapter_dirs[names[0]]), adapter_name=names[0],
                                              is_trainable=False, local_files_only=True)
            for name in names[1:]:
                model.load_adapter(str(adapter_dirs[name]), adapter_name=name, is_trainable=False,
                                   local_files_only=True)
        model.eval()
        set_soup_weights(model, {name: 1.0 for name in names})
    except BaseException:
        undo()
        raise
    return model


def _undo_load(model) -> Callable[[], None]:
    """A function that puts `model` back as it is now: the adapters it holds, the active ones, the
    LoRA layers (a base model gets none), requires_grad flags and train/eval mode."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model() if isinstance(model, PeftModel) else model
    names = adapter_names(model)
    active = list(model.active_adapters) if isinstance(model, PeftModel) else []
    attributes = set(vars(base))
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    training = model.training

    def undo():
        if isinstance(model, PeftModel):
            for name in adapter_names(model):
                if name not in names:
                    model.delete_adapter(name)
            model.base_model.set_adapter(active)
        else:   # PEFT put LoRA layers into the base model itself: swap the original layers back in
            for name, module in list(base.named_modules()):
                if isinstance(module, LoraLayer):
                    parent, _, child = name.rpartition(".")
                    setattr(base.get_submodule(parent), child, module.get_base_layer())
            for extra in set(vars(base)) - attributes:         # e.g. peft_config
                delattr(base, extra)
        for n, p in model.named_parameters():
            p.requires_grad_(grads.get(n, p.requires_grad))
        model.train(training)
    return undo


def random_lora_adapters(model, names: Sequence[str], out_dir: str | Path, *, r: int = 16, lora_alpha: int = 32,
                         target_modules: Sequence[str] = ("q_proj", "v_proj"), std: float = 0.02,
                         seed: int = 0) -> dict[str, Path]:
    """Save one LoRA adapter folder per name with random A and B (both non-zero, N(0, std^2)).

    Stand-ins for trained PPO adapters (same LoraConfig as the PPO code), for tests, benchmarks
    and demos. `model` is left as it was. Returns {name: folder}.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=lora_alpha, target_modules=list(target_modules), lora_dropout=0.0,
                        task_type="CAUSAL_LM")
    folders = {}
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        peft_model = get_peft_model(model, config)
        with torch.no_grad():
            for param_name, param in peft_model.named_parameters():
                if "lora_A" in param_name or "lora_B" in param_name:   # PEFT starts B at 0: no delta
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
        folders[name] = Path(out_dir) / name
        peft_model.save_pretrained(folders[name])
        model = peft_model.unload()      # take the LoRA layers out again
    return folders


def shipped_adapter_dirs(names: Sequence[str] = SIDES, root: str | Path | None = None) -> dict[str, Path]:
    """{name: folder} for the shipped adapters that exist: root/<name>/adapter with an adapter_config.json
    and its weights (adapter_model.safetensors).

    root defaults to data/adapters. Names whose folder is missing or incomplete (e.g. still being
    written by a training run) are left out: compare the length with `names`.
    """
    root = Path(root) if root is not None else SHIPPED_DIR
    found = {}
    for name in names:
        folder = root / name / "adapter"
        if (folder / ADAPTER_CONFIG).is_file() and (folder / ADAPTER_WEIGHTS).is_file():
            found[name] = folder
    return found


def _is_valid_adapter(folder: Path, model) -> bool:
    try:
        read_adapter_weights(folder, read_adapter_config(folder), model)
        return True
    except ValueError:
        return False


def load_soup(model=None, tokenizer=None, names: Sequence[str] = SIDES, *, root: str | Path | None = None,
              fallback_dir: str | Path | None = None, fallback_std: float = 0.02, seed: int = 0,
              verbose: bool = True):
    """The policy with one LoRA adapter per preference side loaded, ready for `set_soup_weights`.

    Uses the trained adapters shipped in data/adapters/<name>/adapter when all of `names` are there.
    Otherwise (a fresh checkout before training, or the tests) it falls back to random stand-ins
    (`random_lora_adapters`, same LoraConfig as PPO; saved once under `fallback_dir`, by default the
    cache folder, and reused) and prints a note saying so: every soup
    computation works the same, but the answers and fronts say nothing about the preferences.
    model, tokenizer: the base policy (loaded with `models.load_policy()` when None).
    Returns (model, tokenizer, source): "shipped" (all trained), "random" (all stand-ins) or "mixed"
    (trained where shipped, stand-ins for the rest, e.g. while `make artifacts` is still running).
    """
    from ..models import load_policy

    if model is None:
        model, default_tok = load_policy()
        tokenizer = tokenizer or default_tok
    if tokenizer is None:
        raise ValueError("Pass the tokenizer with the model (or neither: both are loaded).")
    names = list(names)
    shipped = shipped_adapter_dirs(names, root)
    missing = [n for n in names if n not in shipped]
    dirs = dict(shipped)
    if missing:
        from ..config import cache_dir

        if verbose:
            print(f"NOTE: no trained adapters for {', '.join(missing)} in {root or SHIPPED_DIR} (they are made by "
                  f"`rlphf-lab train-policy` / `make artifacts`). Using RANDOM stand-in adapters for "
                  f"{'them' if shipped else 'all of them'}: the soup maths works the same, but answers and scores "
                  f"that use a stand-in do not reflect its preference.")
        out = Path(fallback_dir) if fallback_dir else cache_dir() / "random_adapters" / f"seed{seed}-std{fallback_std:g}"
        stand_ins = {n: out / n for n in missing}
        if not all(_is_valid_adapter(d, model) for d in stand_ins.values()):   # a cache, so damage is repaired
            stand_ins = random_lora_adapters(model, missing, out, std=fallback_std, seed=seed)   # made once, reused
        dirs.update(stand_ins)
    source = "shipped" if not missing else ("random" if not shipped else "mixed")
    model = load_adapters(model, {n: dirs[n] for n in names})     # names the adapter that fails, if one does
    if shipped and verbose:
        print(f"Loaded the trained adapters {', '.join(shipped)} from {Path(next(iter(shipped.values()))).parent.parent}.")
    model.__dict__["_soup_source"] = source
    return model, tokenizer, source


def model_lock(model) -> threading.RLock:
    """One lock per model: hold it while setting soup weights and generating, so that a widget's
    background generation and a notebook cell never change the weights under each other."""
    lock = model.__dict__.get("_soup_lock")
    if lock is None:
        lock = model.__dict__.setdefault("_soup_lock", threading.RLock())
    return lock


# --------------------------------------------------------------------------------------------
# The exact soup, applied live
# --------------------------------------------------------------------------------------------

@dataclass
class SoupState:
    """What `set_soup_weights` needs, computed once per set of loaded adapters."""
    key: tuple                              # the adapter names this list was built for
    layers: list                            # [(lora_layer, adapter_name, base_scale)], base_scale = alpha/r
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
    key = tuple(config)
    state = model.__dict__.get("_soup_state")
    if state is not None and state.key == key:
        return state
    layers = [(module, name, _base_scale(module, name))
              for module in model.modules() if isinstance(module, LoraLayer)
              for name in module.lora_A]
    new = SoupState(key=key, layers=layers)
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
    Returns the weights applied (all loaded adapters, zeros included).
    """
    state = soup_state(model)
    w = check_weights(weights, state.key, normalize)
    active = tuple(name for name in state.key if name in w)
    if active != state.active:
        # All named adapters take part in every forward pass; inference_mode keeps them frozen.
        model.base_model.set_adapter(list(active), inference_mode=True)
        state.active = active
    for layer, name, base_scale in state.layers:
        # scale_i = w_i * alpha_i / r_i, so the layer adds sum_i w_i s_i B_i A_i x
        layer.scaling[name] = w.get(name, 0.0) * base_scale
    state.weights = {name: w.get(name, 0.0) for name in state.key}
    return dict(state.weights)


def soup_weights(model) -> dict[str, float]:
    """The weights the soup uses now (after normalisation)."""
    return dict(soup_state(model).weights)


def use_adapter(model, name: str) -> None:
    """Only one adapter, at its own scale (a soup with weight 1 on it)."""
    set_soup_weights(model, {name: 1.0})


# --------------------------------------------------------------------------------------------
# Weights from preferences
# --------------------------------------------------------------------------------------------

def combination_weights(spec) -> dict[str, float]:
    """One weight per side of a combination: "P1A+P2B+P3A" -> {"P1A": 1, "P2B": 1, "P3A": 1}.

    Unnormalised; `set_soup_weights` (normalize=True) turns it into 1/3 each, the paper's soup.
    """
    return {p.code: 1.0 for p in parse_combination(spec)}


def dimension_weights_to_sides(positions: dict[str, float]) -> dict[str, float]:
    """Slider positions per dimension -> weights per side.

    Each dimension ("P2": informativeness) is a slider from side A (0.0, concise) to side B
    (1.0, informative); position t gives side A weight 1 - t and side B weight t:
        {"P1": 0.2, "P2": 0.9} -> {"P1A": 0.8, "P1B": 0.2, "P2A": 0.1, "P2B": 0.9}
    Every dimension adds up to 1, so after normalisation each dimension counts equally and the
    corners (0 or 1 everywhere) are the paper's combination soups.
    """
    out = {}
    for dim, t in positions.items():
        if dim not in DIMENSIONS:
            raise ValueError(f"Unknown dimension {dim!r}; use one of {list(DIMENSIONS)} ({DIMENSIONS}).")
        t = float(t)
        if not (0.0 <= t <= 1.0):   # also false for NaN
            raise ValueError(f"Position {t} for {dim} is outside [0, 1]; 0 = side {dim}A, 1 = side {dim}B.")
        out[f"{dim}A"] = 1.0 - t
        out[f"{dim}B"] = t
    return out


def nearest_combination(weights: dict[str, float]) -> str:
    """The combination closest to a soup: per dimension, the side with the larger weight
    (side A on a tie; a dimension with no weight is left out). {"P2A": .3, "P2B": .7} -> "P2B"."""
    best: dict[str, tuple[float, str]] = {}
    for code, w in weights.items():
        p = get_preference(code)
        if w > 0 and (p.dimension not in best or w > best[p.dimension][0]):
            best[p.dimension] = (w, p.code)
    if not best:
        raise ValueError(f"No positive weight in {weights}: no combination is near this soup.")
    return "+".join(code for _, code in sorted((d, c) for d, (_, c) in best.items()))


# --------------------------------------------------------------------------------------------
# Deltas: the exact soup vs the reference code's A/B average
# --------------------------------------------------------------------------------------------

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
    cfg = model.peft_config
    ranks = {n: cfg[n].r for n in names}
    alphas = {n: cfg[n].lora_alpha for n in names}
    if len(set(ranks.values())) > 1 or len(set(alphas.values())) > 1:
        raise ValueError(f"Averaging A and B separately needs the same r and alpha for every adapter "
                         f"(r: {ranks}, alpha: {alphas}); use the exact soup (set_soup_weights) instead.")
    name = next(iter(ranks))
    return ranks[name], cfg[name].lora_alpha / ranks[name]


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
    delta shrinks by w_i (not w_i alone) and cross terms B_i A_j appear that no adapter learned.
    """
    return {m: s * B @ A for m, (A, B, s) in ab_average_factors(model, weights, normalize).items()}


def relative_gap(exact: dict[str, torch.Tensor], approx: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer ||approx - exact||_F / ||exact||_F: how far a merge is from the exact soup."""
    return {m: ((approx[m] - exact[m]).norm() / exact[m].norm().clamp_min(1e-12)).item() for m in exact}


# --------------------------------------------------------------------------------------------
# Merges that create a new adapter
# --------------------------------------------------------------------------------------------

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
    # add_weighted_adapter reads layer.scaling: restore the adapters' own scales first.
    state = soup_state(model)
    saved = [(layer, n, layer.scaling[n]) for layer, n, _ in state.layers]
    for layer, n, base_scale in state.layers:
        layer.scaling[n] = base_scale
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model.base_model.add_weighted_adapter(adapters=list(w), weights=list(w.values()), adapter_name=name,
                                                  combination_type=combination_type, density=density, **kwargs)
    finally:
        for layer, n, scale in saved:
            layer.scaling[n] = scale
    if name not in adapter_names(model):
        raise RuntimeError(f"PEFT did not create adapter {name!r}.")
    _freeze(model, name)
    if active_before:
        model.base_model.set_adapter(active_before, inference_mode=True)
    return name


# --------------------------------------------------------------------------------------------
# How different are the outputs?
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Pareto fronts: sweep the weights, score the answers
# --------------------------------------------------------------------------------------------

def default_score_fn() -> Callable[[str, str], dict[str, float]]:
    """score_fn(instruction, response) -> {side: score} from the simulated annotators."""
    try:
        from ..feedback.annotators import score_all
    except ImportError as err:
        raise ValueError("The simulated annotators (rlphf_lab.feedback.annotators.score_all) are not available; "
                         "pass score_fn=lambda instruction, response: {...} instead.") from err
    return lambda instruction, response: score_all(response, instruction=instruction)


def _instructions(prompts) -> list[str]:
    return [p["instruction"] if isinstance(p, dict) else str(p) for p in prompts]


def _as_weights(spec) -> dict[str, float]:
    if isinstance(spec, dict):
        return {k: float(v) for k, v in spec.items()}
    return combination_weights(spec)          # "P2A" or "P1A+P2B"


def generate_and_score(model, tokenizer, prompts, *, weights: dict[str, float] | None = None, preference=None,
                       label: str = "", score_fn=None, max_new_tokens: int = 96, temperature: float = 0.7,
                       seed: int | None = 0, batch_size: int = 8, normalize: bool = True) -> list[dict]:
    """Answer every prompt with one policy and score the answers; one row per prompt.

    weights given: the exact soup with those weights (divided by their sum unless normalize=False,
    which lets {"P2A": 3.0} triple an adapter's delta). weights None: the base model
    (adapters off), with `preference` appended as a prompt -- the preference-prompting baseline.
    Rows: {label, instruction, response, <side>: score, ...}.
    """
    from ..models import generate

    score_fn = score_fn or default_score_fn()
    instructions = _instructions(prompts)
    kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    with model_lock(model):                 # a widget thread must not re-mix the model meanwhile
        if weights is not None:
            set_soup_weights(model, weights, normalize)
            answers = generate(model, tokenizer, instructions, preference, **kw)
        else:
            with model.disable_adapter():
                answers = generate(model, tokenizer, instructions, preference, **kw)
    return [{"label": label, "instruction": ins, "response": ans, **score_fn(ins, ans)}
            for ins, ans in zip(instructions, answers)]


def sweep_weights(model, tokenizer, prompts, start, end, steps: int = 5, score_fn=None, **generate_kw) -> list[dict]:
    """Walk the soup from `start` to `end` and score the answers at each point.

    start, end: an adapter ("P2A"), a combination ("P1A+P2A") or a weight dict. At t in
    linspace(0, 1, steps) the weights are (1 - t) start + t end (then normalised):
        two opposite adapters:  sweep_weights(model, tok, prompts, "P2A", "P2B")
        two dimensions:         sweep_weights(model, tok, prompts, "P1B", "P2B")   (expertise vs detail)
    The same seed is used at every t, so the answers differ only because the weights do.
    Returns one row per (t, prompt): {t, label, weights, instruction, response, <side>: score}.
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: a sweep needs at least 2 points (the two ends).")
    a, b = _as_weights(start), _as_weights(end)
    score_fn = score_fn or default_score_fn()
    rows = []
    for t in torch.linspace(0, 1, steps).tolist():
        weights = {k: (1 - t) * a.get(k, 0.0) + t * b.get(k, 0.0) for k in {**a, **b}}
        weights = {k: v for k, v in weights.items() if v > 0}
        for row in generate_and_score(model, tokenizer, prompts, weights=weights, label=f"t={t:.2f}",
                                      score_fn=score_fn, **generate_kw):
            rows.append({"t": round(t, 4), "weights": weights, **row})
    return rows


def mean_scores(rows: list[dict], by: str = "label") -> list[dict]:
    """Average the numeric score columns of `rows` per value of `by` (in first-seen order)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        numeric = [k for k, v in members[0].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != by]
        out.append({by: key, "n": len(members), **{k: sum(m[k] for m in members) / len(members) for k in numeric}})
    return out


def pareto_optimal(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (x, y) point, True when no other point is at least as good on both and better on one
    (both objectives are maximised): the points that lie on the Pareto front."""
    pts = [tuple(map(float, p)) for p in points]
    return [not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in pts) for p in pts]


def _single_side(spec) -> str | None:
    """The side code when `spec` names exactly one side ("P2A" or {"P2A": 1}), else None."""
    if isinstance(spec, dict):
        named = [k for k, v in spec.items() if v]
        return named[0] if len(named) == 1 else None
    parsed = parse_combination(spec)
    return parsed[0].code if len(parsed) == 1 else None


def pareto_front(model, tokenizer, prompts, start, end, *, x: str | None = None, y: str | None = None,
                 steps: int = 5, baselines: bool = True, score_fn=None, **generate_kw) -> dict:
    """A Pareto front of the soup between `start` and `end`, with reference points to judge it by.

    The soup sweep is `sweep_weights(start -> end)`; the objectives are the annotators' scores of
    sides x and y (by default the sides `start` and `end` name):
        two opposite adapters:  pareto_front(model, tok, prompts, "P2A", "P2B")   x = P2A, y = P2B
        two dimensions:         pareto_front(model, tok, prompts, "P2A", "P3A")   concise vs friendly
    Reference points, same prompts and seed:
        adapter <side>          the sweep's two ends (a single adapter at weight 1), no extra generation
        prompting <combo>       the base model (adapters off) with the preference prompt of the start
                                side, the end side, and both together when they form a combination
        base model              the base model with no preference prompt
    Returns {"x", "y", "sweep": rows, "reference": rows, "points": [{label, x, y, t, pareto}]}:
    `points` holds the mean scores per sweep step and per reference, and whether each is on the
    Pareto front of all of them (`pareto_optimal`).
    """
    x = x or _single_side(start)
    y = y or _single_side(end)
    if not x or not y:
        raise ValueError(f"Say which two scores to plot: x=..., y=... (side codes); {start!r} -> {end!r} "
                         f"does not name one side at each end.")
    score_fn = score_fn or default_score_fn()
    sweep = sweep_weights(model, tokenizer, prompts, start, end, steps=steps, score_fn=score_fn, **generate_kw)
    reference = []
    for t, spec in ((0.0, start), (1.0, end)):
        side = _single_side(spec)
        if side:
            reference += [{**r, "label": f"adapter {side}"} for r in sweep if r["t"] == t]
    if baselines:
        combos = [spec for spec in (start, end) if not isinstance(spec, dict)]
        if len(combos) == 2:
            try:
                combos.append("+".join(p.code for p in parse_combination(f"{combos[0]}+{combos[1]}")))
            except ValueError:               # two sides of one dimension: no joint prompt
                pass
        for combo in combos:
            reference += generate_and_score(model, tokenizer, prompts, preference=combo, label=f"prompting {combo}",
                                            score_fn=score_fn, **generate_kw)
        reference += generate_and_score(model, tokenizer, prompts, label="base model", score_fn=score_fn,
                                        **generate_kw)
    points = []
    for m in mean_scores(sweep):
        points.append({"label": m["label"], "x": m[x], "y": m[y], "t": m["t"], "kind": "soup"})
    for m in mean_scores(reference):
        points.append({"label": m["label"], "x": m[x], "y": m[y], "t": None, "kind": "reference"})
    for point, ok in zip(points, pareto_optimal([(p["x"], p["y"]) for p in points])):
        point["pareto"] = ok
    return {"x": x, "y": y, "start": start, "end": end, "sweep": sweep, "reference": reference, "points": points}


# --------------------------------------------------------------------------------------------
# Side by side: the exact soup against the merges that make a new adapter
# --------------------------------------------------------------------------------------------

def adapter_delta(model, name: str) -> dict[str, torch.Tensor]:
    """Per layer, one adapter's own weight change s B A, (out, in) in fp32."""
    return {m: s * B @ A for m, (A, B, s) in lora_factors(model, name).items()}


MERGE_METHODS = ("exact", "ab_average", "cat", "linear", "ties", "dare_linear")


@torch.no_grad()
def compare_merges(model, tokenizer, prompts, weights: dict[str, float], methods: Sequence[str] = MERGE_METHODS,
                   *, density: float = 0.5, score_fn=None, max_new_tokens: int = 64, temperature: float = 0.7,
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

    score_fn = score_fn or default_score_fn()
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
                scores = [score_fn(i, a) for i, a in zip(instructions, answers)]
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
