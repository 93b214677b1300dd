"""FeedbackWidget (notebooks 01, 03): label pairs yourself. Each click is appended at once to a
FeedbackStore (one fsynced JSONL line), so a kernel crash loses nothing, and reopening the widget
on the same file resumes where you stopped. What a click records: rlphf_lab/feedback/clicks.py.
"""
from __future__ import annotations

import html

from ..data import FeedbackStore
from ..feedback.clicks import CHOICES, pair_preference, pending_pairs, record_choice, shown_responses
from ..preferences import get_preference


# --------------------------------------------------------------------------------------------
# Feedback widget: the HTML of a pair (what a click records: rlphf_lab/feedback/clicks.py)
# --------------------------------------------------------------------------------------------

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
        new = " (a new file: your first click creates it)" if self.store.is_new else ""
        self.progress.value = (f"{done} / {self.total} labelled &mdash; saved to "
                               f"<code>{html.escape(str(self.store.path))}</code>{new}")
        if self.current is None:
            self.view.value = "<p><b>All pairs labelled. Thank you!</b></p>"
        else:
            self.view.value = pair_html(self.current, self.preference, self.seed)
        for button in self.buttons.values():
            button.disabled = self.current is None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
