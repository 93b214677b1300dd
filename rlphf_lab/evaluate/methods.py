"""The methods compared, and every method's answer to every eval prompt (the slow part, on a GPU).

Each method is an adapter (or none) and whether its input carries the combination's preference
prompt (METHOD_SPEC). The base model gets every adapter it needs loaded once; a method is then
chosen by the adapters' scales (one adapter at weight 1, or the combination's soup at 1/3 each).

    rows = generate_responses(model, tokenizer, adapters_dir, prompts)
    row  = {prompt_id, instruction, method, combination ("" for methods that ignore it), response}
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from ..preferences import SIDES, apply_preference, combinations, parse_combination

METHODS = ("prompting", "rlhf", "multitask", "prompted-morl", "soup", "dpo-soup")
BASELINE = "vanilla"
# which adapter a method uses, and whether its input carries the combination's preference prompt
METHOD_SPEC = {
    "vanilla": (None, False),
    "prompting": (None, True),
    "rlhf": ("rlhf", False),
    "multitask": ("multitask", True),
    "prompted-morl": ("prompted-morl", True),
    "morlaif": ("morlaif", False),
    "soup": ("soup", False),
    "dpo-soup": ("dpo-soup", False),          # the same soup, of the DPO side adapters (rl/dpo.py)
}
SIDE_ADAPTERS = tuple(SIDES)
DPO_SIDE_ADAPTERS = tuple(f"dpo-{side}" for side in SIDES)
SOUPS = {"soup": SIDE_ADAPTERS, "dpo-soup": DPO_SIDE_ADAPTERS}        # a soup's ingredients
METHOD_SPEC.update({side: (side, False) for side in (*SIDE_ADAPTERS, *DPO_SIDE_ADAPTERS)})   # one side's adapter alone
# answered too, for the score and length tables (not a method for every combination)
EXTRA_METHODS = ("morlaif", *SIDE_ADAPTERS, *DPO_SIDE_ADAPTERS)


def _needed_adapters(methods: Sequence[str]) -> list[str]:
    """The adapter names the methods use, in a fixed order (the six sides for a soup)."""
    names = set()
    for m in methods:
        adapter, _ = METHOD_SPEC[m]
        names.update(SOUPS[adapter] if adapter in SOUPS else [adapter] if adapter else [])
    order = (*SIDE_ADAPTERS, "rlhf", "multitask", "prompted-morl", "morlaif", *DPO_SIDE_ADAPTERS)
    return [n for n in order if n in names]


def available_methods(adapters_dir: str | Path, methods: Sequence[str] = METHODS) -> list[str]:
    """The methods whose adapters are in adapters_dir/<name>/adapter (vanilla and prompting need none)."""
    from ..soups import shipped_adapter_dirs

    found = shipped_adapter_dirs(_needed_adapters(methods), adapters_dir)
    return [m for m in methods if all(n in found for n in _needed_adapters([m]))]


def choose_methods(wanted: Sequence[str] | None, adapters_dir: str | Path) -> tuple[list[str], list[str]]:
    """The methods to evaluate: `wanted` (None: every method) that have their adapters, and the
    wanted ones that do not (to say so). An unknown method is a ValueError naming the choices."""
    wanted = list(wanted) if wanted else list(METHODS + EXTRA_METHODS)
    unknown = [m for m in wanted if m not in METHOD_SPEC]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose from {', '.join(METHOD_SPEC)}.")
    methods = available_methods(adapters_dir, [m for m in wanted if m != BASELINE])
    return methods, [m for m in wanted if m not in methods and m != BASELINE]


def load_evaluation_model(model, adapters_dir: str | Path, methods: Sequence[str]):
    """The base model with every adapter the methods need loaded once (soups switch by scales)."""
    from ..soups import load_adapters, shipped_adapter_dirs

    names = _needed_adapters(methods)
    if not names:
        return model
    if hasattr(model, "peft_config"):
        raise ValueError("load_evaluation_model wants the base model, and this one already has adapters; "
                         "load a fresh one with rlphf_lab.load_policy().")
    found = shipped_adapter_dirs(names, adapters_dir)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"No trained adapters for {missing} in {adapters_dir}; train them with `make artifacts` "
                         f"or leave their methods out (available_methods lists what can run).")
    return load_adapters(model, found)


def _select(model, method: str, combo: str) -> None:
    """Point the loaded model at one method: one adapter at weight 1, or the combination's soup."""
    from ..soups import set_soup_weights

    adapter, _ = METHOD_SPEC[method]
    if adapter in SOUPS:
        prefix = "dpo-" if adapter == "dpo-soup" else ""
        set_soup_weights(model, {prefix + p.code: 1.0 for p in parse_combination(combo)})      # 1/3 each
    elif adapter:
        set_soup_weights(model, {adapter: 1.0})


def generate_responses(model, tokenizer, adapters_dir: str | Path, prompts: list[dict], *,
                       combos: Sequence[str] | None = None, methods: Sequence[str] = METHODS,
                       max_new_tokens: int = 128, seed: int = 0, batch_size: int = 64,
                       progress: bool = True, baseline: bool = True) -> list[dict]:
    """Every method's answer to every prompt, per combination where the method depends on it.

    `model` is the base model (its adapters get loaded here). Returns rows {prompt_id, instruction,
    method, combination ("" for methods that ignore it), response}. Seeded: the same seed gives
    every method the same sampling noise stream per batch. baseline=False leaves the vanilla answers
    out (methods added to an evaluation that has them).
    """
    from ..models import generate
    from ..soups import model_lock

    combos = list(combos or combinations())
    methods = [BASELINE] * baseline + [m for m in methods if m != BASELINE]
    peft_model = load_evaluation_model(model, adapters_dir, methods)
    instructions = [p["instruction"] for p in prompts]
    rows = []
    for method in methods:
        adapter, prompted = METHOD_SPEC[method]
        per_combo = prompted or adapter in SOUPS
        for combo in (combos if per_combo else [""]):
            start = time.perf_counter()
            inputs = [apply_preference(x, combo) if prompted else x for x in instructions]
            # no adapter (vanilla, prompting): the base model, with the loaded adapters switched off
            off = peft_model.disable_adapter() if adapter is None and peft_model is not model else nullcontext()
            with model_lock(peft_model), off:         # no widget re-mixes the model between select and generate
                if adapter:
                    _select(peft_model, method, combo)
                answers = generate(peft_model, tokenizer, inputs, max_new_tokens=max_new_tokens, seed=seed,
                                   batch_size=batch_size)
            rows += [{"prompt_id": p["id"], "instruction": p["instruction"], "method": method, "combination": combo,
                      "response": a} for p, a in zip(prompts, answers)]
            if progress:
                print(f"{method:14s} {combo or '(any)':12s} {len(answers)} answers in {time.perf_counter() - start:.1f} s",
                      flush=True)
    return rows
