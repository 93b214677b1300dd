"""What one click in the FeedbackWidget records: the pair's shown order, the store record, what is
left to label, and how often you agree with the simulated annotator.

The widget (rlphf_lab/widgets.py) only lays out buttons; every click goes through `record_choice`
into a `data.FeedbackStore` (one fsynced JSONL line per click).
"""
from __future__ import annotations

import zlib
from datetime import datetime, timezone

import numpy as np

from ..data import FeedbackStore
from ..preferences import get_preference

CHOICES = ("A", "B", "tie", "skip")


def is_swapped(pair_id: str, seed: int = 0) -> bool:
    """Whether a pair is shown as (rejected, chosen): random, but fixed per (seed, pair_id),
    so a resumed session shows every pair in the same order as before."""
    rng = np.random.default_rng([seed, zlib.crc32(pair_id.encode("utf-8"))])
    return bool(rng.random() < 0.5)


def shown_responses(pair: dict, seed: int = 0) -> list[tuple[str, str]]:
    """[(candidate id, text) shown as A, (id, text) shown as B] for one pair."""
    first = (pair.get("chosen_id"), pair["chosen"])
    second = (pair.get("rejected_id"), pair["rejected"])
    return [second, first] if is_swapped(pair["pair_id"], seed) else [first, second]


def pair_preference(pair: dict, preference: str | None) -> str | None:
    """The side being judged: the widget's `preference`, else the pair's own; None when neither
    names one: then the question is your own overall taste ("which answer do you prefer?")."""
    side = preference or pair.get("preference")
    return get_preference(side).code if side else None


def record_choice(pair: dict, choice: str, *, preference: str | None = None, rater: str = "student",
                  seed: int = 0) -> dict:
    """The store record for one click: `choice` is "A", "B", "tie" or "skip" as shown on screen."""
    if choice not in CHOICES:
        raise ValueError(f"Unknown choice {choice!r}; use one of {CHOICES}.")
    (id_a, text_a), (id_b, text_b) = shown_responses(pair, seed)
    record = {
        "pair_id": pair["pair_id"], "prompt_id": pair.get("prompt_id"), "split": pair.get("split"),
        "instruction": pair["instruction"], "preference": pair_preference(pair, preference), "rater": rater,
        "label": choice, "shown_a_id": id_a, "shown_b_id": id_b,
        "chosen": None, "rejected": None, "chosen_id": None, "rejected_id": None,
        "annotator_chosen_id": pair.get("chosen_id"),     # what the simulated annotator picked
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if choice in ("A", "B"):
        (cid, ctext), (rid, rtext) = ((id_a, text_a), (id_b, text_b)) if choice == "A" else ((id_b, text_b), (id_a, text_a))
        record.update(chosen=ctext, rejected=rtext, chosen_id=cid, rejected_id=rid)
    return record


def pending_pairs(pairs: list[dict], store: FeedbackStore, preference: str | None = None,
                  rater: str = "student") -> list[dict]:
    """Pairs still to label: those for `preference` (if given) that `rater` has not labelled yet."""
    done = store.labelled_ids(rater)
    keep = [p for p in pairs if preference is None or p.get("preference") in (None, get_preference(preference).code)]
    return [p for p in keep if p["pair_id"] not in done]


def agreement_with_annotator(records: list[dict]) -> float | None:
    """Share of your A/B answers that match the simulated annotator's choice (None if none yet)."""
    answered = [r for r in records if r.get("label") in ("A", "B") and r.get("annotator_chosen_id")]
    if not answered:
        return None
    return float(np.mean([r["chosen_id"] == r["annotator_chosen_id"] for r in answered]))
