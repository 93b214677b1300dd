"""Loading LoRA adapters into one model for a soup, with every check done before the model is touched.

    model = load_adapters(model, {"P1A": "adapters/P1A", "P2B": "adapters/P2B"})   # all-or-nothing
    model, tok, source = load_soup()          # the six shipped side adapters, or random stand-ins

An adapter folder is checked for a readable adapter_config.json, finite weights with the keys
and shapes that config implies on this model, and (across adapters) one base model and the same
target modules. `random_lora_adapters` writes stand-ins for tests, benchmarks and demos.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..config import ADAPTERS_DIR, MY_ADAPTERS_DIR
from ..preferences import SIDES
from .mix import adapter_names, set_soup_weights

# a PEFT adapter folder's two files (peft.utils.CONFIG_NAME and SAFETENSORS_WEIGHTS_NAME; spelled out
# here so that importing the soups does not import PEFT)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# The trained adapters shipped with the lab: data/adapters/<name>/adapter (PEFT folders), one per
# preference side (Personalized Soups) plus the single-policy baselines of notebook 05.
SHIPPED_DIR = ADAPTERS_DIR
BASELINE_ADAPTERS = ("prompted-morl", "rlhf", "morlaif", "multitask")


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
        # where each adapter came from (soups.learned looks up how well it learned its side)
        model.adapter_sources = {**(getattr(model, "adapter_sources", None) or {}),
                                 **{name: str(adapter_dirs[name]) for name in names}}
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


SOURCES = ("shipped", "mine")


def my_adapter_dirs(names: Sequence[str] = SIDES, root: str | Path | None = None) -> dict[str, Path]:
    """{name: folder} of your own trained adapters (default root: runs/policies, where `rlphf-lab
    train-policy` and `train-dpo` write, and notebooks 04, 05 and 05b keep what a class trains)."""
    return shipped_adapter_dirs(names, root if root is not None else MY_ADAPTERS_DIR)


def load_soup(model=None, tokenizer=None, names: Sequence[str] = SIDES, *, root: str | Path | None = None,
              source: str = "shipped", fallback_dir: str | Path | None = None, fallback_std: float = 0.02,
              seed: int = 0, verbose: bool = True):
    """The policy with one LoRA adapter per preference side loaded, ready for `set_soup_weights`.

    source="shipped" (the default) uses the trained adapters in data/adapters/<name>/adapter;
    source="mine" uses your own from runs/policies/<name>/adapter first (`my_adapter_dirs`) and the
    shipped adapter for every side you have not trained (it prints which is which).
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
    if source not in SOURCES:
        raise ValueError(f"source is {source!r}; use 'shipped' (data/adapters) or 'mine' (runs/policies, your own "
                         f"adapters, the shipped ones for the rest).")
    names = list(names)
    shipped = shipped_adapter_dirs(names, root)
    if source == "mine":
        mine = my_adapter_dirs(names)
        if verbose:
            print(f"Your own adapters from {MY_ADAPTERS_DIR}: {', '.join(mine) or 'none yet'}"
                  + (f"; the shipped ones for {', '.join(n for n in names if n not in mine)}." if len(mine) < len(names) else "."))
        shipped = {**shipped, **mine}
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
    return model, tokenizer, source
