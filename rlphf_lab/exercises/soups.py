"""Notebook 06 (soups): the exact soup's weight delta sum_i w_i s_i B_i A_i, a user's soup weights from
slider positions, and which adapter changes answer length most (predicted, then read from the shipped
evaluation)."""
from __future__ import annotations

from .dpo import choice_problem
from .report import report


# ---- the exact soup's delta ----------------------------------------------------------------------------------

def tiny_soup_model():
    """A one-layer PEFT model (Linear 6 -> 5, layer name "0") with two LoRA adapters of rank 4 and random A
    and B (PEFT starts B at 0): "P2A" with s = alpha / r = 8 / 4 = 2 and "P3A" with s = 2 / 4 = 0.5."""
    import torch
    from peft import LoraConfig, get_peft_model

    g = torch.Generator().manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(6, 5, bias=False))
    with torch.no_grad():
        base[0].weight.copy_(torch.randn(5, 6, generator=g))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], lora_dropout=0.0),
                           adapter_name="P2A")
    model.add_adapter("P3A", LoraConfig(r=4, lora_alpha=2, target_modules=["0"], lora_dropout=0.0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=g))
    return model.eval()


def check_soup_delta(fn) -> bool:
    """Notebook 06: fn(factors, weights) -> the exact soup's weight change for one layer,
    delta_W = sum_i w_i s_i B_i A_i, where factors = {name: (A (r, in), B (out, r), s)}. Compared with
    `soups.exact_delta` of a one-layer PEFT model with two adapters, and then with that live PEFT layer."""
    import torch

    from .. import soups

    model = tiny_soup_model()
    weights = {"P2A": 0.25, "P3A": 0.75}
    factors = {name: soups.lora_factors(model, name)["0"] for name in weights}
    want = soups.exact_delta(model, weights, normalize=False)["0"]
    try:
        out = fn({n: (A.clone(), B.clone(), s) for n, (A, B, s) in factors.items()}, dict(weights))
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    try:
        got = torch.as_tensor(out, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        return report(False, f"your function returned {type(out).__name__}, not a matrix ({err}).")
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} = (out, in) like B @ A, got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-5):
        soups.set_soup_weights(model, weights, normalize=False)        # the live soup: scaling_i = w_i s_i
        x = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            live = model(x)
            by_hand = x @ (model.get_submodule("base_model.model.0").base_layer.weight + got).T
        return report(True, f"sum_i w_i s_i B_i A_i: each adapter's own product, weighted, then added. The live PEFT "
                            f"layer with both adapters active at scale w_i s_i gives (W + yours) x to "
                            f"{(live - by_hand).abs().max().item():.1e}.")
    ab_delta = (sum(weights[n] * B for n, (_, B, _) in factors.items())
                @ sum(weights[n] * A for n, (A, _, _) in factors.items()))
    scale = (got * ab_delta).sum() / (ab_delta * ab_delta).sum()      # any scale s of the A/B average
    if torch.allclose(got, scale * ab_delta, atol=1e-4):
        return report(False, "that is the A/B average (sum w B)(sum w A): it contains cross terms B_i A_j. "
                              "Multiply B_i @ A_i for each adapter first, then take the weighted sum.")
    unscaled = sum(weights[n] * B @ A for n, (A, B, _) in factors.items())
    if torch.allclose(got, unscaled, atol=1e-5):
        return report(False, "almost: each adapter's delta is s_i B_i A_i with s_i = alpha_i / r_i; include s "
                              f"(here {factors['P2A'][2]:g} and {factors['P3A'][2]:g}).")
    squared = sum(weights[n] ** 2 * s * B @ A for n, (A, B, s) in factors.items())
    if torch.allclose(got, squared, atol=1e-5):
        return report(False, "each adapter is weighted by w_i^2 in yours: the exact soup weights it by w_i once.")
    return report(False, "not equal to sum_i w_i s_i B_i A_i; check each term (w * s * B @ A).")


# ---- a user's soup weights from the sliders ---------------------------------------------------------------------

SLIDER_CASES = ({"P1": 0.2, "P2": 0.9, "P3": 0.5}, {"P2": 1.0, "P3": 0.25})


def _close(got: dict, want: dict, tol: float = 1e-6) -> bool:
    return all(abs(got.get(k, 0.0) - want.get(k, 0.0)) <= tol for k in set(got) | set(want))


def _rounded(weights: dict) -> dict:
    return {k: round(v, 3) for k, v in sorted(weights.items())}


def check_slider_weights(fn) -> bool:
    """Notebook 06: fn(positions) -> {side: weight}, the weights the soup gives each adapter when the user's
    sliders stand at `positions` ({dimension: t}, 0 = side A, 1 = side B), normalised as `set_soup_weights`
    does by default. Compared with `soups.dimension_weights_to_sides` + `soups.check_weights(normalize=True)`."""
    from ..preferences import SIDES
    from ..soups import check_weights, dimension_weights_to_sides

    for positions in SLIDER_CASES:
        raw = dimension_weights_to_sides(positions)
        want = check_weights(raw, SIDES, normalize=True)
        try:
            out = fn(dict(positions))
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"your function raised {type(err).__name__} for {positions}: {err}")
        if not isinstance(out, dict):
            return report(False, f"return a dict {{side: weight}} like {{'P2A': 0.1, 'P2B': 0.9}}; got {type(out).__name__}.")
        try:
            got = {str(k): float(v) for k, v in out.items()}
        except (TypeError, ValueError) as err:
            return report(False, f"every weight must be a number ({err}).")
        if _close(got, want):
            continue
        n = len(positions)
        extra = sorted(k for k, v in got.items() if k not in want and abs(v) > 1e-9)
        if extra:
            return report(False, f"for {positions} you gave weight to {extra}: only the sides of the dimensions with a "
                                  f"slider ({', '.join(positions)}) are in the soup, side A and side B of each.")
        swapped = {k[:2] + ("B" if k.endswith("A") else "A"): v for k, v in want.items()}
        if _close(got, swapped):
            return report(False, f"sides A and B are swapped: a slider at t = 0 is all side A (P2A, concise), at 1 all "
                                  f"side B, so side A gets 1 - t and side B gets t (expected {_rounded(want)}).")
        total = sum(got.values())
        if _close(got, raw):
            return report(False, f"right split, not normalised: yours add up to {total:g}. set_soup_weights divides by "
                                  f"the sum, so each of the {n} sliders' dimensions gets 1/{n} of the soup.")
        if n != 3 and _close(got, {k: v / 3 for k, v in raw.items()}):
            return report(False, f"you divided by 3, but only {n} sliders were given ({positions}): divide by the "
                                  f"sum of the weights, so that they add up to 1.")
        return report(False, f"for {positions} expected {_rounded(want)} (adding up to 1), got {_rounded(got)} "
                              f"(adding up to {total:.3g}).")
    return report(True, "side A gets 1 - t and side B gets t, then all are divided by the number of sliders: each "
                        "dimension is 1/n of the soup, and a slider at 0.5 gives its two sides 1/(2n) each. "
                        "set_soup_weights(model, soups.dimension_weights_to_sides(positions)) does exactly this.")


# ---- which adapter changes answer length most (predicted, then read from the shipped evaluation) -----------

LENGTH_KEYS = ("adapter", "direction", "soup")


def evaluation_file(name: str):
    """data/evaluation/<name>, written by `rlphf-lab evaluate` (all eval prompts, every method)."""
    from ..config import DATA_DIR

    return DATA_DIR / "evaluation" / name


def length_changes() -> tuple[float, dict[str, float], float]:
    """(vanilla's mean words, {side adapter: its mean words - vanilla's}, the soup's mean words - vanilla's),
    from the shipped data/evaluation/mean_scores.csv (read at run time: a new evaluation changes them)."""
    from ..preferences import SIDES
    from ..tables import read_csv

    words = {r["method"]: r["words"] for r in read_csv(evaluation_file("mean_scores.csv"))}
    missing = [m for m in ("vanilla", "soup", *SIDES) if m not in words]
    if missing:
        raise ValueError(f"mean_scores.csv has no row for {missing}")
    return words["vanilla"], {s: words[s] - words["vanilla"] for s in SIDES}, words["soup"] - words["vanilla"]


def check_adapter_length(prediction: dict) -> bool:
    """Notebook 06: predict which single side adapter (at full weight) changes the mean answer length most
    against the vanilla model, whether it makes answers "shorter" or "longer", and whether the soup (each
    adapter at 1/3) changes the length "less" or "more" than that adapter alone. The check reads the shipped
    evaluation (data/evaluation/mean_scores.csv, all eval prompts) and compares."""
    from ..preferences import SIDES, get_preference

    problem = choice_problem(prediction, {"adapter": tuple(SIDES), "direction": ("shorter", "longer"),
                                          "soup": ("less", "more")})
    if problem:
        return report(False, problem)
    try:
        vanilla, changes, soup_change = length_changes()
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not read the shipped evaluation ({err}); `rlphf-lab evaluate` writes it.")
    top = max(changes, key=lambda s: abs(changes[s]))
    measured = {"adapter": top, "direction": "shorter" if changes[top] < 0 else "longer",
                "soup": "less" if abs(soup_change) < abs(changes[top]) else "more"}
    guess = {k: str(prediction[k]).strip().upper() if k == "adapter" else str(prediction[k]).strip().lower()
             for k in LENGTH_KEYS}
    table = ", ".join(f"{s} {changes[s]:+.0f}" for s in SIDES)
    line = (f"mean words against vanilla's {vanilla:.0f} (mean_scores.csv): {table}; the soup {soup_change:+.0f}")
    wrong = []
    if guess["adapter"] != top:
        wrong.append(f"the largest change is {top}'s ({get_preference(top).name}), not {guess['adapter']}'s "
                     f"({changes[guess['adapter']]:+.0f} words): ask which annotator scores length")
    if guess["direction"] != measured["direction"]:
        wrong.append(f"{top}'s answers got {measured['direction']}, not {guess['direction']}")
    if guess["soup"] != measured["soup"]:
        wrong.append(f"the soup changed the length {measured['soup']} than {top} alone, not {guess['soup']}: "
                     + ("it gives each adapter a third, and each side is in only half of the combinations"
                        if measured["soup"] == "less" else "the adapters' length changes add up in the soup"))
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"{line}. {text[0].upper()}{text[1:]}.")
    own = ""
    try:
        from ..tables import read_csv

        rates = {r["method"]: r for r in read_csv(evaluation_file("win_rates_by_side.csv"))}
        own = f" On its own side {top} beats vanilla {rates[top][top]:.0%} of the time (win_rates_by_side.csv)."
    except (OSError, KeyError, ValueError):
        pass
    why = (f" Length is what the {get_preference(top).name} annotator scores, and the easiest thing for a 135M "
           f"model to change." if get_preference(top).dimension == "P2" else "")
    soup = ("the soup, each adapter at a third and each side in half of the combinations, moves it less"
            if measured["soup"] == "less" else "the soup moves it even more: its adapters' changes add up")
    return report(True, f"{line}: {top} ({get_preference(top).name}) changes the length most, {soup}.{why}{own}")
