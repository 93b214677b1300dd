"""A simulated population of raters who disagree, for the reward-features notebook (RFM).

Rater h has weights w_h over the three dimension scores d(y) = (d_P1, d_P2, d_P3) of the
simulated annotators, with signs (w_P1 > 0 likes expert answers, < 0 simple ones), and a noise
temperature T_h. Its utility and Bradley-Terry choice are

    u_h(y) = <w_h, d(y)> - penalty(y)
    P(h prefers a over b) = sigmoid((u_h(a) - u_h(b)) / T_h)

where penalty is the annotators' shared degeneracy penalty (0 for ordinary text). The weights
are drawn around one shared mean preference: w_h = mean + disagreement * eps_h, eps_h ~ N(0, I).
Small disagreement: everybody wants roughly the same thing (one reward model fits all);
large disagreement: the signs flip between raters and only a per-rater reward can fit them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .annotators import DIMS, sigmoid
from .pairs import group_by_prompt, score_candidates

# The shared mean preference over (expertise, informativeness, friendliness): on average raters
# like simpler, more informative and friendlier answers.
MEAN_PREFERENCE = (-0.5, 0.5, 1.0)
DISAGREEMENT = {"low": 0.25, "high": 1.5}


@dataclass(frozen=True)
class Rater:
    rater_id: str                          # "rater-017"
    weights: tuple[float, float, float]    # over (d_P1, d_P2, d_P3), with signs
    temperature: float                     # Bradley-Terry noise of this rater's choices


def _disagreement(value) -> float:
    if isinstance(value, str):
        if value not in DISAGREEMENT:
            raise ValueError(f"Unknown disagreement {value!r}; use {list(DISAGREEMENT)} or a number >= 0.")
        return DISAGREEMENT[value]
    if value < 0:
        raise ValueError(f"disagreement={value} must be >= 0 (0 = all raters identical).")
    return float(value)


def make_population(n_raters: int, disagreement: float | str = "low", seed: int = 0, *,
                    mean=MEAN_PREFERENCE, temperature: float = 0.3) -> list[Rater]:
    """n_raters raters with w_h = mean + disagreement * N(0, I); "low" = 0.25, "high" = 1.5."""
    if n_raters < 1:
        raise ValueError(f"n_raters={n_raters}: need at least one rater.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 (raters choose by Bradley-Terry).")
    spread = _disagreement(disagreement)
    rng = np.random.default_rng(seed)
    # w_h = mean + disagreement * eps_h, eps_h ~ N(0, I)        (n_raters, 3)
    weights = np.asarray(mean, dtype=float)[None, :] + spread * rng.standard_normal((n_raters, len(DIMS)))
    return [Rater(f"rater-{h:03d}", tuple(round(float(x), 4) for x in w), float(temperature))
            for h, w in enumerate(weights)]


def rater_utility(rater: Rater, dims: dict[str, float], penalty: float = 0.0) -> float:
    """u_h(y) = <w_h, d(y)> - penalty(y)."""
    return float(np.dot(rater.weights, [dims[d] for d in DIMS])) - penalty


def rater_prob(rater: Rater, dims_a: dict, dims_b: dict, penalty_a: float = 0.0, penalty_b: float = 0.0) -> float:
    """P(rater prefers a over b) = sigmoid((u_h(a) - u_h(b)) / T_h)."""
    diff = rater_utility(rater, dims_a, penalty_a) - rater_utility(rater, dims_b, penalty_b)
    return float(sigmoid(diff / rater.temperature))


def make_rater_pairs(candidates: list[dict], raters: list[Rater], *, pairs_per_rater: int = 120,
                     seed: int = 0, scores: dict | None = None) -> list[dict]:
    """Every rater labels `pairs_per_rater` random pairs (random prompt, two of its candidates).

    Prompts come from all splits in `candidates`; each record keeps its prompt's split, so a
    notebook can hold out the eval-prompt pairs of every rater. Raters never answer "tie". Hack rows
    (hacks.hack_candidates) are left out: every rater agrees they are bad, so they carry nothing
    about how raters differ.
    """
    from .hacks import is_hack

    if pairs_per_rater < 1:
        raise ValueError(f"pairs_per_rater={pairs_per_rater}: need at least one pair per rater.")
    candidates = [c for c in candidates if not is_hack(c)]
    scores = scores if scores is not None else score_candidates(candidates)
    groups = [g for g in group_by_prompt(candidates).values() if len(g) >= 2]
    if not groups:
        raise ValueError("No prompt has two candidates; generate candidates first (rlphf-lab generate-candidates).")
    rng = np.random.default_rng(seed)
    pairs = []
    for rater in raters:
        for k in range(pairs_per_rater):
            by_style = groups[rng.integers(len(groups))]
            styles = sorted(by_style)
            i, j = rng.choice(len(styles), size=2, replace=False)
            a, b = by_style[styles[i]], by_style[styles[j]]
            sa, sb = scores[a["id"]], scores[b["id"]]
            p_a = rater_prob(rater, sa["dims"], sb["dims"], sa["penalty"], sb["penalty"])
            label = "A" if rng.random() < p_a else "B"
            chosen, rejected = (a, b) if label == "A" else (b, a)
            sc, sr = scores[chosen["id"]], scores[rejected["id"]]
            pairs.append({
                "pair_id": f"{rater.rater_id}-{k:04d}",
                "prompt_id": a["prompt_id"], "split": a["split"], "instruction": a["instruction"],
                "preference": None, "rater": rater.rater_id, "label": label,
                "chosen": chosen["response"], "rejected": rejected["response"],
                "chosen_id": chosen["id"], "rejected_id": rejected["id"],
                "score_chosen": round(rater_utility(rater, sc["dims"], sc["penalty"]), 4),
                "score_rejected": round(rater_utility(rater, sr["dims"], sr["penalty"]), 4),
            })
    return pairs


def save_population(path: str | Path, raters: list[Rater], **extra) -> Path:
    """Write the raters' true weights as JSON (the sidecar of a multi-rater pair file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"dimensions": list(DIMS), **extra, "raters": [asdict(r) for r in raters]}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load_population(path: str | Path) -> list[Rater]:
    """Read raters written by `save_population`."""
    record = json.loads(Path(path).read_text())
    return [Rater(r["rater_id"], tuple(r["weights"]), r["temperature"]) for r in record["raters"]]


def true_weights(raters: list[Rater]) -> np.ndarray:
    """The raters' weights as an array (n_raters, 3), columns P1, P2, P3."""
    return np.array([r.weights for r in raters])


def agreement_with(pairs: list[dict], reference: Rater, scores: dict) -> dict[str, float]:
    """Per rater: how often its label matches the noise-free choice of a `reference` rater
    (e.g. the population's mean preference). `scores` from `pairs.score_candidates`."""
    hits: dict[str, list[bool]] = {}
    for p in pairs:
        c, r = scores[p["chosen_id"]], scores[p["rejected_id"]]
        prefers_chosen = rater_utility(reference, c["dims"], c["penalty"]) > rater_utility(reference, r["dims"], r["penalty"])
        hits.setdefault(p["rater"], []).append(prefers_chosen)
    return {rater: float(np.mean(v)) for rater, v in hits.items()}
