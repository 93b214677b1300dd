"""Notebook 07 (evaluation): a win rate with ties counting half, a bootstrap interval over prompts, a paired
difference of two methods, and whether the soup beats preference prompting (predicted, then measured on the
shipped verdicts with `evaluate.paired_difference`)."""
from __future__ import annotations

import math

from .report import report

VERDICTS = ("win", "tie", "loss")


def shipped_verdicts() -> list[dict]:
    """The shipped evaluation's verdicts (`evaluate.shipped_verdicts`), read at run time."""
    from ..evaluate import shipped_verdicts as verdicts

    return verdicts()


def _copies(verdicts: list[dict]) -> list[dict]:
    return [dict(v) for v in verdicts]


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ---- a win rate, ties counting half ------------------------------------------------------------------------

def win_rate_verdicts() -> list[dict]:
    """Sixteen verdicts of one method against vanilla: 5 wins, 7 ties, 4 losses, in a mixed order."""
    counts = {"win": 5, "tie": 7, "loss": 4}
    order = [v for v, n in counts.items() for _ in range(n)]
    order = order[::3] + order[1::3] + order[2::3]
    return [{"prompt_id": f"p{i // 3:02d}", "side": ("P1A", "P2A", "P3A")[i % 3], "method": "soup", "verdict": v}
            for i, v in enumerate(order)]


def check_win_rate(fn) -> bool:
    """Notebook 07: fn(verdicts) -> the win rate, the mean of 1 (win), 1/2 (tie), 0 (loss) over the verdicts.
    Compared with `evaluate.win_rate` on sixteen made-up verdicts and on the shipped soup verdicts."""
    from ..evaluate import win_rate

    verdicts = win_rate_verdicts()
    want = win_rate(verdicts)
    try:
        got = _number(fn(_copies(verdicts)))
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    if got is None:
        return report(False, "return one number, the win rate (a float between 0 and 1).")
    wins, ties, losses = (sum(v["verdict"] == k for v in verdicts) for k in VERDICTS)
    counts = f"{wins} wins, {ties} ties, {losses} losses"
    if abs(got - want) > 1e-9:
        wrong = {wins / len(verdicts): "ties count 0 in yours, as losses: a tie is worth 1/2 (as good as vanilla on that side)",
                 (wins + ties) / len(verdicts): "ties count 1 in yours, as wins: a tie is worth 1/2",
                 wins / (wins + losses): "you left the ties out: they count, as 1/2 each, in the mean over all verdicts",
                 100 * want: "that is a percentage: give the win rate as a fraction between 0 and 1",
                 wins / max(losses, 1): "that is wins / losses, not a win rate: average 1, 1/2, 0 over all verdicts"}
        for value, hint in wrong.items():
            if abs(got - value) < 1e-9:
                return report(False, f"{counts}: got {got:.4f}, expected {want:.4f}: {hint}.")
        return report(False, f"{counts}: got {got:.4f}, expected {want:.4f} = ({wins} + {ties} / 2) / {len(verdicts)}.")
    real = ""
    try:
        soup = [v for v in shipped_verdicts() if v["method"] == "soup"]
    except (OSError, ValueError):     # no shipped evaluation (or one being rewritten): the made-up verdicts only
        soup = []
    if soup:
        try:
            mine = _number(fn(_copies(soup)))
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"right on the small example, but on the shipped soup verdicts your function raised "
                                 f"{type(err).__name__}: {err}")
        if mine is None or abs(mine - win_rate(soup)) > 1e-9:
            return report(False, f"right on the small example, but on the {len(soup)} shipped soup verdicts yours gives "
                                 f"{mine}, evaluate.win_rate {win_rate(soup):.4f}.")
        s_wins, s_ties, s_losses = (sum(v["verdict"] == k for v in soup) for k in VERDICTS)
        real = (f" On the {len(soup)} shipped soup verdicts ({s_wins} wins, {s_ties} ties, {s_losses} losses) yours "
                f"gives {mine:.3f}, the soup's average in the win-rate table.")
    return report(True, f"{counts}: ({wins} + {ties} / 2) / {len(verdicts)} = {want:.4f}. A method that ties "
                        f"everything scores 0.5, as good as vanilla.{real}")


# ---- a bootstrap interval over prompts --------------------------------------------------------------------------

def bootstrap_verdicts() -> list[dict]:
    """30 prompts x 6 verdicts (two combinations x three sides), strongly alike within a prompt: an easy
    prompt is easy on every side, as in the real evaluation."""
    import numpy as np

    rng = np.random.default_rng(7)
    out = []
    for i in range(30):
        base = rng.choice(3, p=[0.4, 0.3, 0.3])
        for j in range(6):
            k = base if rng.random() < 0.85 else rng.choice(3)
            out.append({"prompt_id": f"p{i:02d}", "combination": ("P1A+P2A+P3A", "P1B+P2B+P3B")[j // 3],
                        "side": ("P1", "P2", "P3")[j % 3] + "AB"[j // 3], "method": "soup", "verdict": VERDICTS[k]})
    return out


BOOT_TOLERANCE = 0.02     # two bootstraps of 2000 resamples with other random numbers differ by < 0.01 here


def _pair(out) -> tuple[float, float] | None:
    try:
        low, high = out
    except (TypeError, ValueError):
        return None
    low, high = _number(low), _number(high)
    return None if low is None or high is None else (low, high)


def check_bootstrap_ci(fn) -> bool:
    """Notebook 07: fn(verdicts, n_boot, seed) -> (low, high), the 95% percentile bootstrap interval of the
    win rate that resamples PROMPTS (each with all its verdicts), not single verdicts. Compared with
    `evaluate.bootstrap_ci` (within BOOT_TOLERANCE: other random numbers give other ends)."""
    from ..evaluate import bootstrap_ci, win_rate

    verdicts = bootstrap_verdicts()
    n_boot = 2000
    want = bootstrap_ci(verdicts, n_boot=n_boot, seed=0)
    rate = win_rate(verdicts)
    try:
        out = fn(_copies(verdicts), n_boot, 0)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    got = _pair(out)
    if got is None:
        return report(False, f"return two numbers (low, high); got {out!r:.80}.")
    low, high = got
    expected = f"expected about ({want[0]:.3f}, {want[1]:.3f})"
    if low > high:
        return report(False, f"got ({low:.3f}, {high:.3f}): return (low, high), the low end first.")
    if not low <= rate <= high:
        return report(False, f"your interval ({low:.3f}, {high:.3f}) does not contain the win rate {rate:.3f}; "
                              f"{expected}. Recompute the win rate of each resample with ties as 1/2.")
    if max(abs(low - want[0]), abs(high - want[1])) > BOOT_TOLERANCE:
        ratio = (high - low) / (want[1] - want[0])
        if ratio < 0.75:
            return report(False, f"got ({low:.3f}, {high:.3f}), {expected}: yours is {ratio:.0%} as wide. You resampled "
                                  f"single verdicts: a prompt's six verdicts go together (an easy prompt is easy on every "
                                  f"side), so resample prompt ids with replacement and take all their verdicts along.")
        if ratio < 0.95:
            return report(False, f"got ({low:.3f}, {high:.3f}), {expected}: a little narrow. A 95% interval runs from "
                                  f"the 2.5% to the 97.5% quantile of the resampled win rates.")
        if ratio > 1.25:
            return report(False, f"got ({low:.3f}, {high:.3f}), {expected}: too wide. A 95% interval runs from the 2.5% "
                                  f"to the 97.5% quantile of the resampled win rates; resample as many prompts as there are.")
        return report(False, f"got ({low:.3f}, {high:.3f}), {expected}: the ends are off. Resample the prompts, "
                              f"recompute the win rate, take the 2.5% and 97.5% quantiles.")
    real = ""
    try:
        soup = [v for v in shipped_verdicts() if v["method"] == "soup"]
    except (OSError, ValueError):     # no shipped evaluation (or one being rewritten): the made-up verdicts only
        soup = []
    if soup:
        try:
            mine = _pair(fn(_copies(soup), 1000, 0))
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"right on the made-up verdicts, but on the shipped soup verdicts your function raised "
                                 f"{type(err).__name__}: {err}")
        lib = bootstrap_ci(soup, n_boot=1000, seed=0)
        if mine:
            real = (f" On the shipped soup verdicts ({len({v['prompt_id'] for v in soup})} prompts): yours "
                    f"({mine[0]:.3f}, {mine[1]:.3f}), evaluate.bootstrap_ci ({lib[0]:.3f}, {lib[1]:.3f}).")
    return report(True, f"({low:.3f}, {high:.3f}) around the win rate {rate:.3f}; evaluate.bootstrap_ci gives "
                        f"({want[0]:.3f}, {want[1]:.3f}). Resampling single verdicts would pretend that {len(verdicts)} "
                        f"verdicts are independent, when they come from {len({v['prompt_id'] for v in verdicts})} "
                        f"prompts, and give too narrow an interval.{real}")


# ---- the paired difference of two methods ------------------------------------------------------------------------

def paired_verdicts() -> list[dict]:
    """Two methods on 20 prompts, 3 verdicts each; "prompting" was not judged on the last five prompts (its
    answers were lost, say), which are hard: the soup loses on them."""
    import numpy as np

    rng = np.random.default_rng(11)
    out = []
    for i in range(20):
        hard = i >= 15
        for method, p_win in (("soup", 0.15 if hard else 0.55), ("prompting", 0.4)):
            if method == "prompting" and hard:
                continue
            for side in ("P1A", "P2A", "P3A"):
                u = rng.random()
                verdict = "win" if u < p_win else ("tie" if u < p_win + 0.25 else "loss")
                out.append({"prompt_id": f"p{i:02d}", "combination": "P1A+P2A+P3A", "method": method, "side": side,
                            "verdict": verdict})
    return out


def check_paired_difference(fn) -> bool:
    """Notebook 07: fn(verdicts, method, other) -> the paired difference of win rates,
    mean over the prompts judged for BOTH methods of [w_method(x) - w_other(x)], w_m(x) the mean of 1 / 1/2 / 0
    over prompt x's verdicts of m. Compared with `evaluate.paired_difference(...)["difference"]` on made-up
    verdicts (one method not judged on every prompt) and on the shipped soup and prompting verdicts."""
    from ..evaluate import paired_difference, win_rate

    verdicts = paired_verdicts()
    want = paired_difference(verdicts, "soup", "prompting", n_boot=200)["difference"]
    try:
        got = _number(fn(_copies(verdicts), "soup", "prompting"))
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    if got is None:
        return report(False, "return one number, the mean per-prompt difference of the two win rates.")
    if abs(got - want) > 1e-9:
        soup = [v for v in verdicts if v["method"] == "soup"]
        prompting = [v for v in verdicts if v["method"] == "prompting"]
        n_soup, n_prompting = len({v["prompt_id"] for v in soup}), len({v["prompt_id"] for v in prompting})
        if abs(got - (win_rate(soup) - win_rate(prompting))) < 1e-9:
            return report(False, f"got {got:+.4f}, expected {want:+.4f}: you compared the two overall win rates. The soup "
                                  f"was judged on {n_soup} prompts, prompting on {n_prompting}: pair them, one difference "
                                  f"per prompt judged for both, then the mean of those differences.")
        if abs(got + want) < 1e-9:
            return report(False, f"got {got:+.4f}, expected {want:+.4f}: the sign is flipped, method minus other.")
        return report(False, f"got {got:+.4f}, expected {want:+.4f}: for every prompt judged for both, the method's "
                              f"win rate on it minus the other's; then the mean over those prompts.")
    real = ""
    try:
        shipped = [v for v in shipped_verdicts() if v["method"] in ("soup", "prompting")]
    except (OSError, ValueError):     # no shipped evaluation (or one being rewritten): the made-up verdicts only
        shipped = []
    if shipped:
        lib = paired_difference(shipped, "soup", "prompting")
        try:
            mine = _number(fn(_copies(shipped), "soup", "prompting"))
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"right on the made-up verdicts, but on the shipped ones your function raised "
                                 f"{type(err).__name__}: {err}")
        if mine is None or abs(mine - lib["difference"]) > 1e-9:
            return report(False, f"right on the made-up verdicts, but on the shipped soup and prompting verdicts yours "
                                 f"gives {mine}, evaluate.paired_difference {lib['difference']:+.4f}.")
        real = (" It also agrees with evaluate.paired_difference on the shipped soup and prompting verdicts; the next "
                "exercise asks what that difference says.")
    return report(True, f"{got:+.4f}: the mean over the prompts judged for both. Pairing compares the two methods on "
                        f"the same prompts, so a hard prompt only one of them saw cannot tilt the difference, and the "
                        f"bootstrap of these per-prompt differences (evaluate.paired_difference) gives its interval."
                        f"{real}")


# ---- does the soup beat preference prompting? (predicted, then measured) ----------------------------------------

OUTCOMES = ("soup", "prompting", "neither")


def check_soup_vs_prompting(prediction: str) -> bool:
    """Notebook 07: predict whether the soup beats preference prompting ("soup"), prompting beats the soup
    ("prompting"), or neither clearly ("neither": the paired 95% interval contains 0). The check runs
    `evaluate.paired_difference(verdicts, "soup", "prompting")` on the shipped verdicts
    (data/evaluation/verdicts.jsonl) and compares, with the per-side win rates as the why."""
    from ..evaluate import paired_difference, side_table
    from ..preferences import SIDES

    guess = str(prediction).strip().lower()
    if guess not in OUTCOMES:
        return report(False, f"predict one of {', '.join(map(repr, OUTCOMES))} (a clear difference either way, or "
                              f"none); got {prediction!r}.")
    try:
        verdicts = [v for v in shipped_verdicts() if v["method"] in ("soup", "prompting")]
        diff = paired_difference(verdicts, "soup", "prompting")
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not measure on the shipped verdicts ({err}); `rlphf-lab evaluate` writes them.")
    measured = "neither" if not diff["clear"] else ("soup" if diff["difference"] > 0 else "prompting")
    sides = {r["method"]: r for r in side_table(verdicts, ["soup", "prompting"])}
    per_side = ", ".join(f"{s} {sides['soup'][s]:.2f} vs {sides['prompting'][s]:.2f}" for s in SIDES)
    line = (f"soup - prompting = {diff['difference']:+.3f} over {diff['prompts']} prompts, 95% interval "
            f"({diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}): "
            + ("no clear difference" if measured == "neither" else f"{measured} ahead, clearly")
            + f". Per side (soup vs prompting): {per_side}")
    if guess != measured:
        return report(False, f"{line}. You predicted {guess!r}; read the per-side win rates: where does each method "
                             f"win, and where does it lose?")
    a_sides, b_sides = [s for s in SIDES if s.endswith("A")], [s for s in SIDES if s.endswith("B")]
    lopsided = (sum(sides["prompting"][s] for s in a_sides) - sum(sides["prompting"][s] for s in b_sides)) / 3
    why = (f" Prompting's win rate is {lopsided:.2f} higher on the A sides than on the B sides: asked for anything, "
           f"the 135M model writes shorter, simpler, warmer answers, whatever the combination wanted."
           if lopsided > 0.1 else "")
    return report(True, f"{line}.{why} A difference is a finding only where its paired interval excludes 0.")
