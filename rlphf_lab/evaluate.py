"""Evaluation: do soups serve each of the 8 combinations as well as training for it?

The paper's protocol (RLPHF, Jang et al. 2023, section 5), with our simulated annotators as judges:

    for every eval prompt x and combination c = (s1, s2, s3):
        each method answers x (with c's preference prompt where the method uses one)
        for every side s of c:  judge_s(method's answer, vanilla answer) -> win / tie / loss
    win rate of a method on c = mean over prompts and c's three sides of
                                1 (win), 1/2 (tie), 0 (loss)

Methods (`METHODS`): the vanilla model (the baseline everyone is compared with), preference
prompting, the RLHF baseline, the multitask SFT baseline, Prompted-MORL, and the Personalized
Soup of c's three adapters (exact soup, weight 1/3 each). The MORLAIF adapter is one fixed
scalarization (P1A+P2A+P3A), so it is reported beside the table, not as a method for every c.

    responses = generate_responses(model, tokenizer, adapters_dir, prompts)      # slow part (GPU)
    verdicts  = judge_responses(responses)                                       # seconds
    table     = win_rate_table(verdicts)                                         # + bootstrap CIs

`rlphf-lab evaluate` runs all three and writes CSV + markdown tables under data/evaluation/.
"""
from __future__ import annotations

import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .feedback import annotators
from .feedback.pairs import TIE_MARGIN   # the annotators' tie margin, as for the shipped pair labels
from .preferences import SIDES, apply_preference, combinations, parse_combination
from .tables import markdown_table, read_csv, write_csv   # noqa: F401  (E.read_csv, E.write_csv for callers)

METHODS = ("prompting", "rlhf", "multitask", "prompted-morl", "soup")
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
}
SIDE_ADAPTERS = tuple(SIDES)
METHOD_SPEC.update({side: (side, False) for side in SIDE_ADAPTERS})   # one side's adapter alone
# answered too, for the score and length tables (not a method for every combination)
EXTRA_METHODS = ("morlaif", *SIDE_ADAPTERS)


def _needed_adapters(methods: Sequence[str]) -> list[str]:
    """The adapter names the methods use, in a fixed order (the six sides for the soup)."""
    names = set()
    for m in methods:
        adapter, _ = METHOD_SPEC[m]
        names.update(SIDE_ADAPTERS if adapter == "soup" else [adapter] if adapter else [])
    return [n for n in (*SIDE_ADAPTERS, "rlhf", "multitask", "prompted-morl", "morlaif") if n in names]


def available_methods(adapters_dir: str | Path, methods: Sequence[str] = METHODS) -> list[str]:
    """The methods whose adapters are in adapters_dir/<name>/adapter (vanilla and prompting need none)."""
    from .soups import shipped_adapter_dirs

    found = shipped_adapter_dirs(_needed_adapters(methods), adapters_dir)
    return [m for m in methods if all(n in found for n in _needed_adapters([m]))]


def load_evaluation_model(model, adapters_dir: str | Path, methods: Sequence[str]):
    """The base model with every adapter the methods need loaded once (soups switch by scales)."""
    from .soups import load_adapters, shipped_adapter_dirs

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
    from .soups import set_soup_weights

    adapter, _ = METHOD_SPEC[method]
    if adapter == "soup":
        set_soup_weights(model, {p.code: 1.0 for p in parse_combination(combo)})      # 1/3 each
    elif adapter:
        set_soup_weights(model, {adapter: 1.0})


def generate_responses(model, tokenizer, adapters_dir: str | Path, prompts: list[dict], *,
                       combos: Sequence[str] | None = None, methods: Sequence[str] = METHODS,
                       max_new_tokens: int = 128, seed: int = 0, batch_size: int = 64,
                       progress: bool = True) -> list[dict]:
    """Every method's answer to every prompt, per combination where the method depends on it.

    `model` is the base model (its adapters get loaded here). Returns rows {prompt_id, instruction,
    method, combination ("" for methods that ignore it), response}. Seeded: the same seed gives
    every method the same sampling noise stream per batch.
    """
    from .models import generate

    combos = list(combos or combinations())
    methods = [BASELINE] + [m for m in methods if m != BASELINE]
    peft_model = load_evaluation_model(model, adapters_dir, methods)
    instructions = [p["instruction"] for p in prompts]
    rows = []
    for method in methods:
        adapter, prompted = METHOD_SPEC[method]
        per_combo = prompted or adapter == "soup"
        for combo in (combos if per_combo else [""]):
            start = time.perf_counter()
            inputs = [apply_preference(x, combo) if prompted else x for x in instructions]
            if adapter:
                _select(peft_model, method, combo)
            # no adapter (vanilla, prompting): the base model, with the loaded adapters switched off
            off = peft_model.disable_adapter() if adapter is None and peft_model is not model else nullcontext()
            with off:
                answers = generate(peft_model, tokenizer, inputs, max_new_tokens=max_new_tokens, seed=seed,
                                   batch_size=batch_size)
            rows += [{"prompt_id": p["id"], "instruction": p["instruction"], "method": method, "combination": combo,
                      "response": a} for p, a in zip(prompts, answers)]
            if progress:
                print(f"{method:14s} {combo or '(any)':12s} {len(answers)} answers in {time.perf_counter() - start:.1f} s",
                      flush=True)
    return rows


# --------------------------------------------------------------------------------------------
# Judging: one criterion at a time, against the vanilla answer, order randomised, ties allowed
# --------------------------------------------------------------------------------------------

def judge_responses(rows: list[dict], *, combos: Sequence[str] | None = None, tie_margin: float = TIE_MARGIN,
                    seed: int = 0) -> list[dict]:
    """Verdicts of the simulated annotators: for every (prompt, combination, method, side of the
    combination), the method's answer against the vanilla answer.

    The answers are shown in a random order (recorded in `order`); the annotators are symmetric, so
    the order cannot change their verdict, but the same records feed the AI judge, which is not.
    Returns rows {prompt_id, combination, method, side, order, score_method, score_vanilla, verdict}
    with verdict in {"win", "tie", "loss"} from the method's point of view.
    """
    combos = list(combos or combinations())
    vanilla = {r["prompt_id"]: r for r in rows if r["method"] == BASELINE}
    if not vanilla:
        raise ValueError("No vanilla answers in the rows: generate_responses always adds them; pass its output.")
    cache: dict[tuple[str, str], dict] = {}

    def scores(row: dict) -> dict:
        # the annotators read the instruction too (relevance, prompt echo)
        key = (row["instruction"], row["response"])
        if key not in cache:
            cache[key] = annotators.score_all(row["response"], row["instruction"])
        return cache[key]

    rng = random.Random(seed)
    out = []
    for r in rows:
        if r["method"] == BASELINE:
            continue
        base = vanilla[r["prompt_id"]]
        for combo in ([r["combination"]] if r["combination"] else combos):
            for p in parse_combination(combo):
                s_m, s_v = scores(r)[p.code], scores(base)[p.code]
                verdict = "tie" if abs(s_m - s_v) <= tie_margin else ("win" if s_m > s_v else "loss")
                out.append({"prompt_id": r["prompt_id"], "combination": combo, "method": r["method"], "side": p.code,
                            "order": "method-first" if rng.random() < 0.5 else "vanilla-first",
                            "score_method": round(s_m, 4), "score_vanilla": round(s_v, 4), "verdict": verdict})
    return out


POINTS = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def win_rate(verdicts: list[dict]) -> float:
    """Mean of 1 (win), 1/2 (tie), 0 (loss)."""
    return float(np.mean([POINTS[v["verdict"]] for v in verdicts])) if verdicts else float("nan")


def bootstrap_ci(verdicts: list[dict], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap over prompts: resample prompt ids with replacement, recompute the win rate."""
    by_prompt: dict[str, list[float]] = {}
    for v in verdicts:
        by_prompt.setdefault(v["prompt_id"], []).append(POINTS[v["verdict"]])
    if not by_prompt:
        return float("nan"), float("nan")
    sums = np.array([sum(x) for x in by_prompt.values()])
    counts = np.array([len(x) for x in by_prompt.values()])
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(sums), size=(n_boot, len(sums)))
    rates = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return float(np.quantile(rates, alpha / 2)), float(np.quantile(rates, 1 - alpha / 2))


def paired_difference(verdicts: list[dict], method: str, other: str, n_boot: int = 1000, alpha: float = 0.05,
                      seed: int = 0) -> dict:
    """Does `method` beat `other`? Their win-rate difference with a paired bootstrap over prompts.

    Both methods were judged on the same prompts, so resampling a prompt keeps its two scores together:

        diff = mean_x [ w_method(x) - w_other(x) ],   w_m(x) = mean of 1 / 1/2 / 0 over x's verdicts of m

    The difference is "clear" when the interval excludes 0.
    """
    per_prompt = {m: {} for m in (method, other)}
    for v in verdicts:
        if v["method"] in per_prompt:
            per_prompt[v["method"]].setdefault(v["prompt_id"], []).append(POINTS[v["verdict"]])
    ids = sorted(set(per_prompt[method]) & set(per_prompt[other]))
    if not ids:
        raise ValueError(f"No prompt has verdicts for both {method!r} and {other!r}; judge both methods first.")
    # d: (prompts,) per-prompt difference of win rates
    d = np.array([np.mean(per_prompt[method][i]) - np.mean(per_prompt[other][i]) for i in ids])
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(len(d), size=(n_boot, len(d)))].mean(axis=1)
    low, high = float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))
    return {"method": method, "other": other, "prompts": len(ids), "difference": float(d.mean()),
            "ci_low": low, "ci_high": high, "clear": bool(low > 0 or high < 0)}


def win_rate_table(verdicts: list[dict], methods: Sequence[str] | None = None, combos: Sequence[str] | None = None,
                   n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per method: win rate per combination and on average, with a bootstrap CI for the average.

    Also the win rate per dimension side (how often the method beats vanilla on 'concise', ...)."""
    combos = list(combos or combinations())
    methods = list(methods or dict.fromkeys(v["method"] for v in verdicts))
    table = []
    for m in methods:
        mine = [v for v in verdicts if v["method"] == m]
        if not mine:
            continue
        row = {"method": m}
        for c in combos:
            row[c] = win_rate([v for v in mine if v["combination"] == c])
        row["average"] = win_rate(mine)
        row["ci_low"], row["ci_high"] = bootstrap_ci(mine, n_boot=n_boot, seed=seed)
        row["wins"] = sum(v["verdict"] == "win" for v in mine)
        row["ties"] = sum(v["verdict"] == "tie" for v in mine)
        row["losses"] = sum(v["verdict"] == "loss" for v in mine)
        table.append(row)
    return table


def side_table(verdicts: list[dict], methods: Sequence[str] | None = None) -> list[dict]:
    """Win rate per method and side (averaged over the combinations that contain the side)."""
    methods = list(methods or dict.fromkeys(v["method"] for v in verdicts))
    rows = []
    for m in methods:
        row = {"method": m}
        for s in SIDE_ADAPTERS:
            row[s] = win_rate([v for v in verdicts if v["method"] == m and v["side"] == s])
        rows.append(row)
    return rows


def _side_means(rows: list[dict], scores: list[dict]) -> list[dict]:
    """Per method: mean of scores[i][side] over its answers for combinations containing the side (or
    all its answers when it ignores the combination), plus mean length in words."""
    out = []
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [(r, sc) for r, sc in zip(rows, scores) if r["method"] == m]
        row = {"method": m, "words": float(np.mean([len(r["response"].split()) for r, _ in mine]))}
        for s in SIDE_ADAPTERS:
            vals = [sc[s] for r, sc in mine if not r["combination"] or s in r["combination"].split("+")]
            row[s] = float(np.mean(vals)) if vals else float("nan")
        out.append(row)
    return out


def mean_annotator_scores(rows: list[dict]) -> list[dict]:
    """Mean annotator score of every method on every side (its answers for combinations containing the
    side, or all its answers when it ignores the combination), plus mean length in words."""
    return _side_means(rows, [annotators.score_all(r["response"], r["instruction"]) for r in rows])


def mean_reward_scores(rows: list[dict], scorer, batch_size: int = 16) -> list[dict]:
    """The same table with the reward models PPO optimised (`rewards.load_reward_scorer()`) as judges.

    Read next to `mean_annotator_scores`: reward up and annotator flat is reward hacking; both flat means the
    policy did not move (too little training), whatever the noisy per-batch rewards of metrics.csv say.
    scorer(sides, instructions, responses) -> (batch, 6) standardised rewards.
    """
    scores = []
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = rows[i:i + batch_size]
            r = scorer(list(SIDE_ADAPTERS), [x["instruction"] for x in batch], [x["response"] for x in batch])
            scores += [dict(zip(SIDE_ADAPTERS, v)) for v in r.float().tolist()]       # (batch, 6) -> dicts
    return _side_means(rows, scores)


def evaluation_tables(rows: list[dict], *, seed: int = 0, n_boot: int = 1000) -> dict:
    """All the tables of one evaluation from the answers (`generate_responses` rows):

        verdicts        judge_responses(rows)
        win_rates       win_rate_table over the judged METHODS, with bootstrap CIs
        soup_vs_others  paired_difference(soup, m) for every other judged method
        win_rates_by_side  side_table;  mean_scores: mean_annotator_scores (per side, and length)
    """
    verdicts = judge_responses(rows, seed=seed)
    judged = [m for m in METHODS if any(v["method"] == m for v in verdicts)]
    return {"verdicts": verdicts,
            "win_rates": win_rate_table(verdicts, methods=judged, n_boot=n_boot, seed=seed),
            "soup_vs_others": [paired_difference(verdicts, "soup", m, n_boot=n_boot, seed=seed)
                               for m in judged if m != "soup"] if "soup" in judged else [],
            "win_rates_by_side": side_table(verdicts),
            "mean_scores": mean_annotator_scores(rows)}


REPORT_SECTIONS = (
    ("win_rates", "Win rates against the vanilla model (simulated annotators; 95% bootstrap CI over prompts)"),
    ("soup_vs_others", "Soup minus each other method (paired bootstrap over prompts; clear = the interval excludes 0)"),
    ("win_rates_by_side", "Win rate per side"),
    ("mean_scores", "Mean annotator score per side, and length"),
    ("reward_scores", "Mean reward-model score per side (the rewards PPO optimised)"),
    ("ai_judge", "AI judge (the 135M model) on a sample of the same comparisons"),
)


def report_markdown(summary: dict) -> str:
    """The README-ready markdown of an `evaluation_tables` result (plus optional reward_scores / ai_judge)."""
    parts = []
    for key, title in REPORT_SECTIONS:
        if key in summary:
            table = summary[key] if isinstance(summary[key], list) else [summary[key]]
            parts += [f"## {title}", "", markdown_table(table) if table else "(nothing to compare)", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# The AI judge on a sample of the same comparisons
# --------------------------------------------------------------------------------------------

def ai_judge_verdicts(model, tokenizer, rows: list[dict], verdicts: list[dict], *, n: int = 200, seed: int = 0,
                      batch_size: int = 16) -> list[dict]:
    """The 135M model as judge (MORLAIF's principle prompt, both orders) on n sampled comparisons.

    Each sampled verdict gets `ai_verdict` (win / tie / loss for the method; "tie" when the two
    orders disagree) so `agreement` can compare it with the simulated annotator.
    """
    from .feedback.judge import judge_orders

    answer = {(r["prompt_id"], r["method"], r["combination"]): r["response"] for r in rows}
    instruction = {r["prompt_id"]: r["instruction"] for r in rows}
    rng = random.Random(seed)
    sample = rng.sample(verdicts, min(n, len(verdicts)))
    out = []
    for side in SIDE_ADAPTERS:
        mine = [v for v in sample if v["side"] == side]
        if not mine:
            continue
        ins = [instruction[v["prompt_id"]] for v in mine]
        ours = [answer.get((v["prompt_id"], v["method"], v["combination"]), answer.get((v["prompt_id"], v["method"], "")))
                for v in mine]
        base = [answer[(v["prompt_id"], BASELINE, "")] for v in mine]
        # shown in the recorded order; judge_orders also asks the swapped order
        first = [o if v["order"] == "method-first" else b for v, o, b in zip(mine, ours, base)]
        second = [b if v["order"] == "method-first" else o for v, o, b in zip(mine, ours, base)]
        p_ab, p_ba = judge_orders(model, tokenizer, side, ins, first, second, batch_size=batch_size)
        for v, pab, pba in zip(mine, p_ab, p_ba):
            # pab = P("A") shown as (first, second): first better; pba = P("A") shown as (second, first)
            first_wins = [pab > 0.5, pba < 0.5]
            if first_wins[0] != first_wins[1]:
                ai = "tie"
            else:
                method_wins = first_wins[0] == (v["order"] == "method-first")
                ai = "win" if method_wins else "loss"
            out.append({**v, "ai_verdict": ai})
    return out


def agreement(ai_rows: list[dict]) -> dict:
    """How often the AI judge's verdict equals the annotator's, over all and over decisive pairs."""
    if not ai_rows:
        return {"n": 0, "agreement": float("nan"), "decisive": 0, "decisive_agreement": float("nan")}
    same = [r["ai_verdict"] == r["verdict"] for r in ai_rows]
    decisive = [r for r in ai_rows if r["ai_verdict"] != "tie" and r["verdict"] != "tie"]
    return {"n": len(ai_rows), "agreement": float(np.mean(same)),
            "ai_tie_rate": float(np.mean([r["ai_verdict"] == "tie" for r in ai_rows])),
            "decisive": len(decisive),
            "decisive_agreement": float(np.mean([r["ai_verdict"] == r["verdict"] for r in decisive])) if decisive else float("nan"),
            "ai_win_rate": win_rate([{**r, "verdict": r["ai_verdict"]} for r in ai_rows]),
            "annotator_win_rate": win_rate(ai_rows)}


# --------------------------------------------------------------------------------------------
# Training cost: n preference sides -> how many policies, how many hours
# --------------------------------------------------------------------------------------------

COST_SCENARIOS = (("P1", (2,)), ("P1 x P2", (2, 2)), ("P1 x P2 x P3", (2, 2, 2)),
                  ("P1 x P2 x P3 with P3C/P3D", (2, 2, 4)))


def training_cost(side_seconds: float, pmorl_seconds: float | None = None, pmorl_combinations: int = 8,
                  scenarios=COST_SCENARIOS) -> list[dict]:
    """Training runs and wall time to serve every combination, for growing sets of preference sides.

    Personalized Soups: one PPO run per side, sum_d n_d runs (linear); a new side costs one more run.
    One policy per combination: prod_d n_d runs (what soups avoid).
    Prompted-MORL: one run, but it must see every combination, so with the same samples per
    combination its length grows with their number: pmorl_seconds * combinations / pmorl_combinations,
    and a new side means training it again from the start.
    side_seconds, pmorl_seconds: measured wall times (adapter provenance records).
    """
    rows = []
    for label, dims in scenarios:
        sides, combos = int(sum(dims)), int(np.prod(dims))
        row = {"preferences": label, "sides": sides, "combinations": combos,
               "soup_runs": sides, "soup_hours": sides * side_seconds / 3600,
               "per_combination_runs": combos, "per_combination_hours": combos * side_seconds / 3600}
        if pmorl_seconds is not None:
            row["prompted_morl_runs"] = 1
            row["prompted_morl_hours"] = pmorl_seconds * combos / pmorl_combinations / 3600
        rows.append(row)
    return rows


DEVICES = ("cpu", "cuda")


def run_seconds(adapters_dir: str | Path, names: Sequence[str], device: str | None = None) -> dict[str, float]:
    """Measured wall time of each trained adapter, from its provenance record.

    device ("cpu", "cuda"): only runs trained there, so that compared times come from one machine.
    """
    from .rl.compare import shipped_record
    from .soups import shipped_adapter_dirs

    if device not in (None, *DEVICES):
        raise ValueError(f"Unknown device {device!r}; use one of {DEVICES} (or None for every run).")
    out = {}
    for name, folder in shipped_adapter_dirs(names, adapters_dir).items():
        info = shipped_record(folder)
        if "wall_time_s" in info and (device is None or str(info.get("device", "")).split(":")[0] == device):
            out[name] = float(info["wall_time_s"])
    return out


def measured_training_cost(adapters_dir: str | Path, default_seconds: float = 1800.0) -> dict:
    """`training_cost` from the shipped adapters' wall times, all from one machine: the one that
    trained Prompted-MORL (the side runs are averaged over the sides trained there too).

    Returns {"device", "side_seconds", "pmorl_seconds", "seconds" (per run, that device), "cost" (rows)}.
    With nothing trained yet, side runs are assumed to take `default_seconds` (device None).
    """
    names = [*SIDE_ADAPTERS, "prompted-morl"]
    device = next((d for d in DEVICES if "prompted-morl" in run_seconds(adapters_dir, names, d)), None)
    seconds = run_seconds(adapters_dir, names, device) if device else {}
    side_runs = [t for n, t in seconds.items() if n in SIDE_ADAPTERS]
    side_seconds = sum(side_runs) / len(side_runs) if side_runs else default_seconds
    return {"device": device, "side_seconds": side_seconds, "pmorl_seconds": seconds.get("prompted-morl"),
            "seconds": seconds, "cost": training_cost(side_seconds, seconds.get("prompted-morl"))}


def user_soup_weights(dimension_weights: dict[str, float], sharpness: float = 1.0) -> dict[str, float]:
    """A user's weights over the dimensions (notebook 03's fit_my_weights: + = expert, informative,
    friendly) -> soup weights per side, through one slider position per dimension:

        t_dim = sigmoid(sharpness * sign_dim * w_dim),  sign = +1 for P1 (->P1B) and P2 (->P2B), -1 for P3 (->P3B)
        weights = dimension_weights_to_sides(t)       (side A gets 1 - t, side B gets t)
    """
    from .soups import dimension_weights_to_sides

    sign = {"P1": 1.0, "P2": 1.0, "P3": -1.0}
    unknown = [d for d in dimension_weights if d not in sign]
    if unknown:
        raise ValueError(f"Unknown dimensions {unknown}; expected weights for P1, P2, P3 (fit_my_weights(...).weights).")
    positions = {d: float(1.0 / (1.0 + np.exp(-sharpness * sign[d] * w))) for d, w in dimension_weights.items()}
    return dimension_weights_to_sides(positions)
