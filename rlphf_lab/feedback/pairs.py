"""Labelled preference pairs from the candidate pool.

Each prompt has 7 candidates (no preference prompt, and one per side P1A..P3B). For a side, the
pairs of a prompt are the opposite-style pair of the side's own dimension (e.g. P2A vs P2B for
the conciseness annotator: the pair that differs most along P2) plus random others among the
remaining 20, so the data also holds pairs that differ along the other dimensions, as real data
would. Each pair is labelled by the side's simulated annotator (`annotators.label_from_scores`).

A pair record:

    {"pair_id", "prompt_id", "split", "instruction", "preference", "rater", "label",
     "chosen", "rejected", "chosen_id", "rejected_id", "score_chosen", "score_rejected"}

`label` is how the annotator answered with the pair shown in a random order ("A" = the first
shown won), kept so that position balance can be checked. Ties are dropped (counted with
`keep_ties=True` and `label_summary`).

Hack rows (style "hack:<kind>", from `hacks.hack_candidates`) appended to the pool are paired on
top: `hack_pairs_per_prompt` pairs per prompt and side of a normal answer without penalty (the side's
own style first) against a hack, drawn from a generator of their own, so the normal pairs are the same
with or without hack rows. Their pair ids end in "-hack<j>".
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from ..preferences import SIDES, opposite
from . import annotators
from .hacks import HACK_PREFIX          # styles of the hack rows: "hack:<kind>"

STYLE_ORDER = ["none"] + SIDES
HACK_PAIRS_PER_PROMPT = 8      # normal-vs-hack pairs per prompt and side, when the pool has hack rows (2 left 78 of
# 1,848 held-out hack comparisons misranked, mostly P2A off-topic and truncated answers; 6 halved the train-split
# CV failures, 11 gained little more over 6: see README, reward models)
# Defaults of the shipped training set. Margin 0.25: pairs closer than a quarter of a standard
# deviation are ties. T = 0.1 then flips about 0.5% of the remaining labels (a few percent of the
# close pairs): with only ~100 training prompts, T = 0.3 (7% flipped) cost reward models on frozen
# features 2-3 points of held-out accuracy, which the next notebook cannot spare.
TEMPERATURE = 0.1
TIE_MARGIN = 0.25
# The shipped label sets (`rlphf-lab label-pairs --split train|eval`): noisy train labels, and
# noise-free held-out labels (temperature 0: the annotator's own ranking) drawn with another seed.
LABEL_SETS = {"train": {"pairs_per_prompt": 16, "seed": 0, "temperature": TEMPERATURE},
              "eval": {"pairs_per_prompt": 10, "seed": 1, "temperature": 0.0}}


def group_by_prompt(candidates: list[dict]) -> dict[str, dict[str, dict]]:
    """{prompt_id: {style: candidate}}, prompts sorted by id."""
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for c in candidates:
        groups[c["prompt_id"]][c["style"]] = c
    return dict(sorted(groups.items()))


def score_candidates(candidates: list[dict]) -> dict[str, dict]:
    """Annotator outputs for every candidate, computed once: {id: {"dims", "penalty", "scores"}}.
    Each response is checked against its own candidate's instruction (off-topic, echo, ...)."""
    out = {}
    for c in candidates:
        signals = annotators.raw_signals(c["response"], c.get("instruction"))
        dims = annotators._dims_from_signals(signals)
        penalty = annotators.degeneracy_penalty(signals)
        out[c["id"]] = {"dims": dims, "penalty": penalty, "scores": annotators.side_scores(dims, penalty)}
    return out


def choose_style_pairs(styles: list[str], side: str, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """n style pairs for one prompt: the side's opposite-style pair first, then random others
    (among the normal styles of STYLE_ORDER; hack and other styles are left out)."""
    own = tuple(sorted((side, opposite(side)))) if side in SIDES else ("", "")   # GENERAL has no opposite
    normal = [s for s in styles if s in STYLE_ORDER]
    everything = [p for p in itertools.combinations(sorted(normal, key=STYLE_ORDER.index), 2)]
    others = [p for p in everything if tuple(sorted(p)) != own]
    chosen = [own] if own[0] in styles and own[1] in styles else []
    picks = rng.permutation(len(others))[: max(0, n - len(chosen))]
    return (chosen + [others[i] for i in picks])[:n]


def choose_hack_pairs(styles: list[str], side: str, n: int, rng: np.random.Generator,
                      clean: set[str] | None = None) -> list[tuple[str, str]]:
    """n (normal style, hack style) pairs for one prompt: the side's own style against a random hack
    first, then random normal styles against the other hacks (each hack used once while there are enough).
    `clean`: the normal styles whose answer has no penalty (default: all); only those are paired, since
    a hack against a degenerate answer teaches nothing."""
    normal = sorted((s for s in styles if s in STYLE_ORDER and (clean is None or s in clean)), key=STYLE_ORDER.index)
    bad = sorted(s for s in styles if s.startswith(HACK_PREFIX))
    if not normal or not bad or n <= 0:
        return []
    out = []
    hack_order = [bad[i] for i in rng.permutation(len(bad))]
    for j in range(n):
        good = side if j == 0 and side in normal else normal[int(rng.integers(len(normal)))]
        out.append((good, hack_order[j % len(hack_order)]))
    return out


def _check_settings(pairs_per_prompt: int, tie_margin: float, temperature: float) -> None:
    if pairs_per_prompt < 1 or pairs_per_prompt > 21:
        raise ValueError(f"pairs_per_prompt={pairs_per_prompt}: each prompt has 7 candidates, i.e. 21 pairs; use 1..21.")
    if tie_margin < 0 or temperature < 0:
        raise ValueError(f"tie_margin ({tie_margin}) and temperature ({temperature}) must be >= 0.")


def make_preference_pairs(candidates: list[dict], side: str, *, pairs_per_prompt: int = 16, seed: int = 0,
                          tie_margin: float = TIE_MARGIN, temperature: float = TEMPERATURE,
                          keep_ties: bool = False, scores: dict | None = None,
                          hack_pairs_per_prompt: int = HACK_PAIRS_PER_PROMPT) -> list[dict]:
    """Label `pairs_per_prompt` pairs per prompt with the simulated annotator of `side`, plus
    `hack_pairs_per_prompt` normal-vs-hack pairs for prompts that have hack rows.

    Deterministic given `seed`: the pairs, their shown order and the Bradley-Terry noise all come
    from one generator seeded with (seed, side); the hack pairs from a second one, (seed, side, 1).
    Ties are dropped unless `keep_ties`. `scores` (from `score_candidates`) saves recomputing the
    annotators for every side.
    """
    side = annotators._check_side(side)     # the simulated annotators cover the six main sides
    _check_settings(pairs_per_prompt, tie_margin, temperature)
    if hack_pairs_per_prompt < 0:
        raise ValueError(f"hack_pairs_per_prompt={hack_pairs_per_prompt} must be >= 0.")
    scores = scores if scores is not None else score_candidates(candidates)
    side_index = (*SIDES, annotators.GENERAL).index(side)
    rng = np.random.default_rng([seed, side_index])              # each side its own stream
    hack_rng = np.random.default_rng([seed, side_index, 1])      # ... and one for its hack pairs
    pairs = []
    for prompt_id, by_style in group_by_prompt(candidates).items():
        drawn = [(str(k), s1, s2, rng) for k, (s1, s2) in
                 enumerate(choose_style_pairs(list(by_style), side, pairs_per_prompt, rng))]
        clean = {s for s, c in by_style.items() if scores[c["id"]]["penalty"] == 0}
        drawn += [(f"hack{j}", s1, s2, hack_rng) for j, (s1, s2) in
                  enumerate(choose_hack_pairs(list(by_style), side, hack_pairs_per_prompt, hack_rng, clean))]
        for k, s1, s2, r in drawn:
            a, b = (by_style[s1], by_style[s2]) if r.random() < 0.5 else (by_style[s2], by_style[s1])
            score_a, score_b = scores[a["id"]]["scores"][side], scores[b["id"]]["scores"][side]
            label = annotators.label_from_scores(score_a, score_b, tie_margin=tie_margin,
                                                 temperature=temperature, rng=r)
            if label == "tie" and not keep_ties:
                continue
            chosen, rejected = (a, b) if label in ("A", "tie") else (b, a)
            pairs.append({
                "pair_id": f"{a['split']}-{side}-{prompt_id}-{k}",
                "prompt_id": prompt_id, "split": a["split"], "instruction": a["instruction"],
                "preference": side, "rater": "annotator", "label": label,
                "chosen": chosen["response"], "rejected": rejected["response"],
                "chosen_id": chosen["id"], "rejected_id": rejected["id"],
                "score_chosen": round(scores[chosen["id"]]["scores"][side], 4),
                "score_rejected": round(scores[rejected["id"]]["scores"][side], 4),
            })
    return pairs


def label_candidates(candidates: list[dict], sides, *, pairs_per_prompt: int, seed: int, temperature: float,
                     tie_margin: float = TIE_MARGIN, keep_ties: bool = True) -> list[dict]:
    """make_preference_pairs for every side in `sides`, scoring each candidate once."""
    scores = score_candidates(candidates)
    pairs = []
    for side in sides:
        pairs += make_preference_pairs(candidates, side, pairs_per_prompt=pairs_per_prompt, seed=seed,
                                       tie_margin=tie_margin, temperature=temperature, keep_ties=keep_ties,
                                       scores=scores)
    return pairs


def _is_hack_pair(pair: dict) -> bool:
    return "-hack-" in pair["chosen_id"] or "-hack-" in pair["rejected_id"]


def label_summary(pairs: list[dict]) -> dict[str, dict]:
    """Per preference side: pairs, tie rate, share of "A" labels, and how often noise flipped a label.

    "flipped" = the chosen response has the lower annotator score (Bradley-Terry noise at work).
    "own_style_wins" = among pairs holding a candidate written under this side's own preference
    prompt, how often that candidate was chosen (a sanity check of annotator and prompt together);
    normal-vs-hack pairs are left out of it and counted apart: "hack_pairs", and "hack_rejected",
    how often the hack lost.
    """
    out = {}
    for side in sorted({p["preference"] for p in pairs}, key=lambda s: (s is None, str(s))):
        group = [p for p in pairs if p["preference"] == side]
        labelled = [p for p in group if p["label"] != "tie"]
        hacks = [p for p in labelled if _is_hack_pair(p)]
        own = [p for p in labelled if side and not _is_hack_pair(p)
               and (p["chosen_id"].endswith("-" + side) or p["rejected_id"].endswith("-" + side))]
        out[str(side)] = {
            "pairs": len(labelled),
            "ties": len(group) - len(labelled),
            "tie_rate": round((len(group) - len(labelled)) / len(group), 4) if group else 0.0,
            "frac_A": round(float(np.mean([p["label"] == "A" for p in labelled])), 4) if labelled else None,
            "flipped": round(float(np.mean([p["score_chosen"] < p["score_rejected"] for p in labelled])), 4) if labelled else None,
            "own_style_wins": round(float(np.mean([p["chosen_id"].endswith("-" + side) for p in own])), 4) if own else None,
            "hack_pairs": len(hacks),
            "hack_rejected": round(float(np.mean(["-hack-" in p["rejected_id"] for p in hacks])), 4) if hacks else None,
        }
    return out

