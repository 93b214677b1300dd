"""Notebook widgets. They hold no logic of their own: every button calls a plain function below
that a unit test can call too.

FeedbackWidget: label pairs yourself. Each click is appended at once to a FeedbackStore (one
fsynced JSONL line), so a kernel crash loses nothing, and reopening the widget on the same file
resumes where you stopped.
"""
from __future__ import annotations

import html
import zlib
from datetime import datetime, timezone

import numpy as np

from .data import FeedbackStore
from .preferences import get_preference

CHOICES = ("A", "B", "tie", "skip")


# --------------------------------------------------------------------------------------------
# Feedback widget: the functions behind the buttons
# --------------------------------------------------------------------------------------------

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


def pair_html(pair: dict, preference: str | None = None, seed: int = 0) -> str:
    """The prompt, the side being judged (name and prompt text) and the two responses as HTML."""
    side = pair_preference(pair, preference)
    (_, a), (_, b) = shown_responses(pair, seed)
    if side is None:
        question = "<p><b>Which answer do you prefer?</b> (your own taste: no preference prompt)</p>"
    else:
        pref = get_preference(side)
        question = f"<p><b>Preference {pref.code} ({pref.name})</b>: <i>{html.escape(pref.prompt)}</i></p>"

    def box(title, text):
        body = html.escape(text).replace("\n", "<br>")
        return (f"<div style='flex:1;border:1px solid #ccc;padding:6px;margin:2px'><b>{title}</b><br>{body}</div>")

    return (f"{question}<p><b>Prompt:</b> {html.escape(pair['instruction'])}</p>"
            f"<div style='display:flex'>{box('Response A', a)}{box('Response B', b)}</div>")


# --------------------------------------------------------------------------------------------
# The widget itself: layout and wiring only
# --------------------------------------------------------------------------------------------

class FeedbackWidget:
    """Label pairs with buttons A / B / tie / skip; every click goes straight to `store_path`.

        w = FeedbackWidget(load_pairs("pairs_eval")[:20], "my_labels.jsonl", preference="P3A")
        w            # displays it; w.buttons["A"].click() does what a click does
    """

    def __init__(self, pairs: list[dict], store_path, preference: str | None = None, rater: str = "student",
                 seed: int = 0):
        import ipywidgets as W

        self.store = FeedbackStore(store_path)
        self.preference = get_preference(preference).code if preference else None
        self.rater, self.seed = rater, seed
        self.total = len([p for p in pairs if self.preference is None or p.get("preference") in (None, self.preference)])
        self.queue = pending_pairs(pairs, self.store, self.preference, rater)
        self.view = W.HTML()
        self.progress = W.HTML()
        self.buttons = {c: W.Button(description=c, layout=W.Layout(width="80px")) for c in CHOICES}
        for choice, button in self.buttons.items():
            button.on_click(lambda _button, choice=choice: self.choose(choice))
        self.widget = W.VBox([self.view, W.HBox(list(self.buttons.values())), self.progress])
        self._show()

    @property
    def current(self) -> dict | None:
        return self.queue[0] if self.queue else None

    def choose(self, choice: str) -> dict | None:
        """What a button click does: append the record, move to the next pair."""
        if self.current is None:
            return None
        record = record_choice(self.current, choice, preference=self.preference, rater=self.rater, seed=self.seed)
        self.store.append(record)
        self.queue.pop(0)
        self._show()
        return record

    def _show(self) -> None:
        done = self.total - len(self.queue)
        self.progress.value = f"{done} / {self.total} labelled &mdash; saved to <code>{html.escape(str(self.store.path))}</code>"
        if self.current is None:
            self.view.value = "<p><b>All pairs labelled. Thank you!</b></p>"
        else:
            self.view.value = pair_html(self.current, self.preference, self.seed)
        for button in self.buttons.values():
            button.disabled = self.current is None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
