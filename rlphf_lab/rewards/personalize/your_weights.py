"""Adapt to you: pairs for you to judge in the FeedbackWidget, a simulated rater to click for headless
runs (into a file of its own, `labels_to_fit`), and your weights over the three dimensions fitted from your clicks:

    P(you prefer a over b) = sigmoid(<w, d(a) - d(b)>),   d = (d_P1, d_P2, d_P3) annotator scores
    w = argmin_w  sum_j -log sigmoid(<d(chosen_j) - d(rejected_j), w>) + l2/2 ||w||^2
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data import FeedbackStore
from ...feedback.annotators import DIMS, dimension_scores
from ...feedback.raters import Rater, rater_utility
from ..rfm import fit_user_weights
from .dimension_weights import DIM_LABELS


def pairs_for_you(pairs: list[dict], n: int = 20, seed: int = 0) -> list[dict]:
    """n pairs for you to judge (no preference prompt): distinct prompts, shown in a seeded order.

    They come from a multi-rater set, stripped of whichever rater labelled them.
    """
    by_prompt: dict[str, dict] = {}
    for p in pairs:
        by_prompt.setdefault(p["prompt_id"], p)
    prompts = sorted(by_prompt)
    if not prompts:
        raise ValueError("No pairs to choose from: load a multi-rater set first (load_rater_set('raters_low')).")
    rng = np.random.default_rng(seed)
    out = []
    for k, i in enumerate(rng.permutation(len(prompts))[:n]):
        p = by_prompt[prompts[i]]
        out.append({"pair_id": f"you-{p['prompt_id']}-{k:03d}", "prompt_id": p["prompt_id"], "split": p.get("split"),
                    "instruction": p["instruction"], "preference": None, "rater": None,
                    "chosen": p["chosen"], "rejected": p["rejected"],
                    "chosen_id": p["chosen_id"], "rejected_id": p["rejected_id"]})
    return out


def click_as(widget, rater: Rater, n: int) -> int:
    """Let a simulated `rater` press the widget's A / B buttons on the next n pairs (for headless
    runs, or to see what a known user's clicks give). Returns the number of clicks made."""
    clicks = 0
    for _ in range(n):
        if widget.current is None:
            break
        widget.buttons[rater_choice(rater, widget.current, widget.seed)].click()
        clicks += 1
    return clicks


def rater_choice(rater: Rater, pair: dict, seed: int = 0) -> str:
    """"A" or "B": the answer shown on that button that the simulated `rater` prefers (utility over the
    annotators' dimension scores)."""
    from ...feedback.clicks import shown_responses

    (_, text_a), (_, text_b) = shown_responses(pair, seed)
    u_a, u_b = (rater_utility(rater, dimension_scores(t)) for t in (text_a, text_b))
    return "A" if u_a >= u_b else "B"


def labels_to_fit(my_labels: str | Path, pairs: list[dict], stand_in: Rater, *, min_labels: int = 12,
                  stand_in_labels: str | Path | None = None) -> tuple[Path, str]:
    """Whose clicks to fit: yours when you have labelled at least `min_labels` pairs, else a stand-in user's.

    The stand-in answers the same pairs (as `click_as` would press the buttons) into a file of its own,
    `stand_in_labels` (default: stand_in_labels.jsonl beside yours), so your file is never written by it.
    Returns the file to fit and one line that says which it is.
    """
    from ...feedback.clicks import pending_pairs, record_choice

    my_labels = Path(my_labels)
    yours = len(FeedbackStore(my_labels).records()) if my_labels.exists() else 0
    if yours >= min_labels:
        return my_labels, f"fitting your {yours} labels ({my_labels.name})"
    other = Path(stand_in_labels) if stand_in_labels else my_labels.with_name("stand_in_labels.jsonl")
    store = FeedbackStore(other)
    for pair in pending_pairs(pairs, store, rater=stand_in.rater_id)[:max(0, min_labels - len(store.records()))]:
        store.append(record_choice(pair, rater_choice(stand_in, pair), rater=stand_in.rater_id))
    return other, (f"you have labelled {yours} of {min_labels} pairs, so the stand-in user's clicks are fitted "
                   f"instead ({other.name}); your file {my_labels.name} is untouched")


@dataclass
class UserWeights:
    weights: dict[str, float]   # {"P1": w, "P2": w, "P3": w}: + likes expert / informative / friendly answers
    n_pairs: int                # A/B answers used (ties and skips carry no choice)
    accuracy: float             # share of those answers that the fitted weights reproduce

    def __str__(self) -> str:
        parts = ", ".join(f"{DIM_LABELS[d]} {w:+.2f}" for d, w in self.weights.items())
        return f"your weights from {self.n_pairs} answers: {parts} (they reproduce {self.accuracy:.0%} of your answers)"


def dimension_differences(records: list[dict], dims: dict[str, np.ndarray] | None = None) -> torch.Tensor:
    """d(chosen) - d(rejected) for each A/B record: (k, 3), columns P1, P2, P3.

    dims: precomputed {response id: (3,)} (`response_dims`); otherwise scored from the texts.
    """
    rows = []
    for r in records:
        if dims is not None and r.get("chosen_id") in dims and r.get("rejected_id") in dims:
            rows.append(dims[r["chosen_id"]] - dims[r["rejected_id"]])
        else:
            c, j = dimension_scores(r["chosen"]), dimension_scores(r["rejected"])
            rows.append(np.array([c[d] - j[d] for d in DIMS]))
    return torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(rows), len(DIMS))


def fit_my_weights(records_or_store, dims: dict[str, np.ndarray] | None = None, *, rater: str | None = None,
                   l2: float = 1.0) -> UserWeights:
    """Your weight vector over the three preference dimensions, from your clicks.

    records_or_store: a FeedbackStore, its path, or its records (the FeedbackWidget writes them);
    rater: keep only this rater's records. The model is the raters' own:
        P(you prefer a over b) = sigmoid(<w, d(a) - d(b)>),  d = (d_P1, d_P2, d_P3) annotator scores,
    fitted by l2-regularised logistic regression (`rfm.fit_user_weights`) on chosen-minus-rejected rows.
    """
    if isinstance(records_or_store, (str, Path)):
        records_or_store = FeedbackStore(records_or_store, must_exist=True)     # a mistyped path is an error
    records = records_or_store.records() if isinstance(records_or_store, FeedbackStore) else list(records_or_store)
    answered = [r for r in records if r.get("label") in ("A", "B") and r.get("chosen") and r.get("rejected")
                and (rater is None or r.get("rater") == rater)]
    if not answered:
        raise ValueError(f"No A/B answers{f' from rater {rater!r}' if rater else ''} in {len(records)} records: "
                         f"label some pairs in the widget above first (ties and skips carry no choice).")
    x = dimension_differences(answered, dims)                               # (k, 3)
    # w = argmin_w  sum_j -log sigmoid(<d(chosen_j) - d(rejected_j), w>) + l2/2 ||w||^2
    w = fit_user_weights(x, labels=None, l2=l2)
    accuracy = float(((x @ w) > 0).float().mean())
    return UserWeights({d: float(v) for d, v in zip(DIMS, w)}, len(answered), accuracy)
