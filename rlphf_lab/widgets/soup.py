"""SoupWidget (notebook 06): drag the soup's weights and watch the mixed policy answer, token by
token. The weights come from `soups.dimension_weights_to_sides` (or one slider per adapter); the
answer is written by `soups.continue_answer`, which re-mixes the model (`set_soup_weights`, mix in
"weights") or mixes the adapters' next-token log-probabilities (`stream_mixed_outputs`' decoding,
mix in "outputs") and samples with `models.generate`'s sampler; the bars come from the simulated
annotators' `score_all`.

Timing: a slider move starts a short timer (`debounce_s`); further moves restart it, so a drag
starts one generation, for the final position. A move while an answer is being written stops
that answer at the next token (`should_stop`); the next mix then goes on with the same answer
from the tokens written so far (prompt + prefix fed again under the new weights), and the answer
shows each mix's words in its own colour, with a legend. "restart on move" starts a new answer
instead. Generation runs in a background thread, one at a time per model (`soups.model_lock`), so
the weights never change under a running answer, neither by the widget nor by a notebook cell
that uses the same model.

    w = SoupWidget(model, tok)                   # model: a PeftModel from soups.load_adapters
    w                                            # shows it
    w.dimension_sliders["P2"].value = 0.9        # what a drag does
    w.wait(); w.answer, w.scores                 # the traits a test (or a cell) can read

sync=True runs each generation at once in the caller's thread (no timer, no thread): for tests
and for headless notebook runs.
"""
from __future__ import annotations

import html
import threading

import traitlets

from .. import models, soups
from ..preferences import DIMENSIONS, get_preference


# --------------------------------------------------------------------------------------------
# Soup widget: sliders for the merge weights, the streamed answer, the annotators' bars
# --------------------------------------------------------------------------------------------

DEFAULT_PROMPT = "Why do leaves change colour in autumn?"


def score_bars_html(scores: dict[str, float], lo: float = -3.0, hi: float = 3.0) -> str:
    """A small bar chart (HTML) of the annotators' scores, bars growing left or right of 0."""
    if not scores:
        return ""
    rows = []
    for side, value in scores.items():
        try:
            name = get_preference(side).name
        except ValueError:
            name = side
        frac = max(0.0, min(1.0, (value - lo) / (hi - lo)))          # 0..1 across [lo, hi]
        zero = (0 - lo) / (hi - lo)
        left, width = (min(frac, zero), abs(frac - zero))
        color = "#4c78a8" if value >= 0 else "#e45756"
        rows.append(
            f"<tr><td style='padding-right:6px'>{html.escape(side)} {html.escape(name)}</td>"
            f"<td><div style='position:relative;width:180px;height:12px;background:#eee'>"
            f"<div style='position:absolute;left:{100 * left:.1f}%;width:{100 * width:.1f}%;height:12px;"
            f"background:{color}'></div><div style='position:absolute;left:{100 * zero:.1f}%;width:1px;"
            f"height:12px;background:#333'></div></div></td>"
            f"<td style='padding-left:6px;font-family:monospace'>{value:+.2f}</td></tr>")
    return "<table style='font-size:12px'>" + "".join(rows) + "</table>"


ANSWER_BOX = "white-space:pre-wrap;border:1px solid #ddd;padding:6px;min-height:4em;max-width:42em"
# one background per mix that wrote part of an answer (the first mix, the second, ...), light enough to read on
MIX_COLOURS = ("#dbe9f6", "#fde2c8", "#d8f0d2", "#f6d5e5", "#e8e0f4", "#fff3bf")


def answer_html(text: str) -> str:
    return f"<div style='{ANSWER_BOX}'>{html.escape(text)}</div>"


def mix_colour(i: int) -> str:
    return MIX_COLOURS[i % len(MIX_COLOURS)]


def segments_html(segments: list[dict]) -> str:
    """The answer in the same box as `answer_html`, each segment's text ({"text", "label"}) on its mix's colour."""
    spans = "".join(f"<span class='rlphf-mix' style='background:{mix_colour(i)}' title='{html.escape(seg['label'])}'>"
                    f"{html.escape(seg['text'])}</span>" for i, seg in enumerate(segments))
    return f"<div style='{ANSWER_BOX}'>{spans}</div>"


def legend_html(segments: list[dict]) -> str:
    """Which mix wrote which colour: a swatch, the weights ({"label"}) and the token count per segment."""
    if not segments:
        return ""
    rows = "".join(f"<div><span style='background:{mix_colour(i)};border:1px solid #bbb;padding:0 7px'></span> "
                   f"{html.escape(seg['label'])} &middot; {seg['tokens']} tokens</div>" for i, seg in enumerate(segments))
    return f"<div class='rlphf-mix-legend' style='font-size:11px;color:#444'>written by:{rows}</div>"


class SoupWidget(traitlets.HasTraits):
    """Sliders for the soup's weights, a prompt, the streamed answer and its scores."""

    answer = traitlets.Unicode("")            # the soup's answer (grows while streaming)
    scores = traitlets.Dict()                 # annotators' scores of the finished answer
    compare_answer = traitlets.Unicode("")    # base model + preference prompt (compare mode)
    compare_scores = traitlets.Dict()
    compare_preference = traitlets.Unicode("")
    weights = traitlets.Dict()                # the weights the last answer was written with
    segments = traitlets.List()               # the answer's parts, one per mix: {"label", "weights", "mix", "text", "tokens"}
    status = traitlets.Unicode("")
    generations_started = traitlets.Int(0)
    generations_finished = traitlets.Int(0)
    generations_cancelled = traitlets.Int(0)
    remixes = traitlets.Int(0)                # answers continued under a new mix (moves while writing)

    def __init__(self, model, tokenizer, *, adapters: list[str] | None = None, prompt: str = DEFAULT_PROMPT,
                 scorer=None, debounce_s: float = 0.3, max_new_tokens: int = 80, temperature: float = 0.7,
                 top_p: float = 0.9, seed: int | None = 0, sync: bool = False, autostart: bool = True,
                 mix: str = "weights", restart_on_move: bool = False, fold: bool = False, stream_fn=None,
                 continue_fn=None, learned: dict[str, float] | None = None):
        import ipywidgets as W

        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.adapters = list(adapters or soups.adapter_names(model))
        self.scorer = scorer          # the lab's scorer protocol (rlphf_lab.scoring); None: the simulated annotators
        self.stream_fn = stream_fn or models.stream_generate          # the comparison: base model + prompt
        self.continue_fn = continue_fn or soups.continue_answer       # the soup's answer, continued on a move
        self.fold = fold    # True: fold the weight soup into W (base-model speed, equal up to bf16 rounding)
        self.remix_answer: soups.RemixAnswer | None = None   # the soup's last answer: its tokens, by segment
        self._texts: list[str] = []           # the text each of its segments wrote, as streamed
        self.generate_kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        self.debounce_s, self.sync = debounce_s, sync
        self._request = 0                     # id of the newest request; older generations stop
        self._lock = soups.model_lock(model)  # one generation on the model at a time (cells too)
        self._timer: threading.Timer | None = None
        self._syncing = False                 # True while we set slider values ourselves

        # One slider per dimension whose two sides are both loaded: 0 = side A, 1 = side B.
        self.dimension_sliders, rows = {}, []
        for dim, dim_name in DIMENSIONS.items():
            if f"{dim}A" in self.adapters and f"{dim}B" in self.adapters:
                a, b = get_preference(f"{dim}A").name, get_preference(f"{dim}B").name
                slider = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description=dim_name,
                                       readout_format=".2f", style={"description_width": "110px"},
                                       layout=W.Layout(width="360px"))
                self.dimension_sliders[dim] = slider
                rows.append(W.HBox([slider, W.Label(f"{a} <-> {b}")]))
        # Advanced: one slider per adapter (weights >= 0, normalised by the soup).
        self.adapter_sliders = {
            name: W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description=self._adapter_label(name),
                                style={"description_width": "160px"}, layout=W.Layout(width="420px"))
            for name in self.adapters}
        self.advanced = W.ToggleButton(value=not self.dimension_sliders, description="advanced: one slider per adapter",
                                       layout=W.Layout(width="260px"))
        self.compare = W.ToggleButton(value=False, description="compare with preference prompting",
                                      layout=W.Layout(width="260px"))
        self.mix_in = W.ToggleButtons(options=list(soups.MIX_CHOICES), value=soups.check_mix(mix), description="mix in",
                                      tooltips=["one model: W + sum_i w_i s_i B_i A_i",
                                                "sum_i w_i log p_i per token (MOD): k forwards"],
                                      style={"button_width": "80px"})
        self.restart = W.Checkbox(value=restart_on_move, description="restart on move", indent=False,
                                  layout=W.Layout(width="160px"))
        self.prompt = W.Text(value=prompt, description="prompt", continuous_update=False,
                             layout=W.Layout(width="600px"))
        self.answer_view, self.legend_view, self.scores_view = W.HTML(answer_html("")), W.HTML(), W.HTML()
        self.compare_title, self.compare_view, self.compare_scores_view = W.HTML(), W.HTML(answer_html("")), W.HTML()
        self.status_view = W.HTML()
        # own-side win rates of the loaded adapters (default: the shipped evaluation); a warning for weak ones
        self.learned = soups.own_side_win_rates(model) if learned is None else dict(learned)
        self.learned_view = W.HTML(soups.weak_adapters_html(self.learned))
        self.advanced_box = W.VBox(list(self.adapter_sliders.values()))
        self.compare_box = W.VBox([self.compare_title, self.compare_view, self.compare_scores_view])
        soup_box = W.VBox([W.HTML("<b>soup</b>"), self.answer_view, self.legend_view, self.scores_view])
        self.widget = W.VBox([self.prompt, W.VBox(rows), self.learned_view, W.HBox([self.advanced, self.compare]),
                              W.HBox([self.mix_in, self.restart]), self.advanced_box,
                              W.HBox([soup_box, self.compare_box]), self.status_view])
        self._show_boxes()

        for slider in [*self.dimension_sliders.values(), *self.adapter_sliders.values()]:
            slider.observe(self._on_change, names="value")
        self.prompt.observe(self._on_change, names="value")
        self.mix_in.observe(self._on_change, names="value")
        self.compare.observe(self._on_toggle, names="value")
        self.advanced.observe(self._on_toggle, names="value")
        self.observe(self._show_status, names="status")
        if autostart:
            self.refresh()

    # ---- weights: library calls only ------------------------------------------------------

    @staticmethod
    def _adapter_label(name: str) -> str:
        try:
            return f"{name} {get_preference(name).name}"
        except ValueError:
            return name

    def current_weights(self) -> dict[str, float]:
        """The weights the sliders ask for (not yet normalised)."""
        if self.advanced.value:
            return {name: s.value for name, s in self.adapter_sliders.items()}
        return self.weights_from_dimensions()

    def weights_from_dimensions(self) -> dict[str, float]:
        """Dimension sliders -> one weight per adapter (adapters outside a slider's two sides get 0)."""
        sides = soups.dimension_weights_to_sides({d: s.value for d, s in self.dimension_sliders.items()})
        return {name: sides.get(name, 0.0) for name in self.adapters}

    # ---- events ---------------------------------------------------------------------------

    def _on_toggle(self, change):
        self._show_boxes()
        if change["owner"] is self.advanced and change["new"] and self.dimension_sliders:
            # entering advanced mode: the adapter sliders start where the dimension sliders are,
            # so the weights do not change and no new answer is needed
            self._syncing = True
            try:
                for name, w in self.weights_from_dimensions().items():
                    self.adapter_sliders[name].value = w
            finally:
                self._syncing = False
            return
        self._on_change(change)

    def _on_change(self, change=None):
        if not self._syncing:
            self.refresh()

    def refresh(self) -> None:
        """Ask for a new answer: now (sync) or after `debounce_s` without further changes."""
        self._request += 1          # a running generation sees this and stops at its next token
        request = self._request
        if self.sync:
            self._generate(request)
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce_s, self._generate, args=(request,))
        self._timer.daemon = True
        self._timer.start()

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until the pending request (timer and generation) is done."""
        timer = self._timer
        while timer is not None:
            timer.join(timeout)
            if timer is self._timer:
                break
            timer = self._timer

    def close(self) -> None:
        """Stop any running generation and close the widgets."""
        self._request += 1
        if self._timer is not None:
            self._timer.cancel()
        self.widget.close()

    # ---- the generation (runs in the timer's thread unless sync) -----------------------------

    def _stream(self, request: int, preference, trait: str, view) -> bool:
        """Stream one answer into `trait` and `view`; False when a newer request stopped it."""
        stale = lambda: request != self._request    # noqa: E731
        setattr(self, trait, "")
        for piece in self.stream_fn(self.model, self.tokenizer, self.prompt.value, preference,
                                    should_stop=stale, **self.generate_kw):
            setattr(self, trait, getattr(self, trait) + piece)
            view.value = answer_html(getattr(self, trait))
        return not stale()

    def _show_segments(self, answer: soups.RemixAnswer) -> None:
        self.segments = [dict(label=seg.label(), weights={k: v for k, v in seg.weights.items() if v > 0},
                              mix=seg.mix, text=text, tokens=len(seg.token_ids))
                         for seg, text in zip(answer.segments, self._texts) if text or seg.token_ids]
        self.answer_view.value = segments_html(self.segments)
        self.legend_view.value = legend_html(self.segments)

    def _write_soup(self, request: int) -> bool | None:
        """The soup's answer under the sliders' mix: a new one, or the one a move interrupted, continued
        from its tokens (unless "restart on move" or the prompt changed). True when finished, False when
        a newer request stopped it, None when the weights were refused."""
        stale = lambda: request != self._request    # noqa: E731
        answer = self.remix_answer
        go_on = (answer is not None and not answer.finished and not self.restart.value
                 and answer.instruction == self.prompt.value)
        if not go_on:
            answer = soups.RemixAnswer(self.prompt.value)
        try:
            pieces = self.continue_fn(self.model, self.tokenizer, answer, self.current_weights(), mix=self.mix_in.value,
                                      fold=self.fold, should_stop=stale, **self.generate_kw)
        except ValueError as err:                   # e.g. all sliders at 0 in advanced mode
            self.status = f"{err}"
            return None
        self.generations_started += 1
        if go_on:
            self.remixes += 1
            self.status = f"re-mixed: going on from {len(answer.token_ids)} tokens ..."
        else:
            self.remix_answer, self._texts, self.answer = answer, [], ""
            self.status = "writing ..."
        self.weights, self.scores, self.compare_scores = answer.segments[-1].weights, {}, {}
        self.scores_view.value = self.compare_scores_view.value = ""
        self._texts.append("")
        self._show_segments(answer)
        for piece in pieces:
            self.answer += piece
            self._texts[-1] += piece
            self._show_segments(answer)
        return not stale()                          # finished: the next move starts a new answer

    def _scores(self, answer: str) -> dict[str, float]:
        """{side: score} of one answer to the current prompt, from the widget's scorer."""
        return soups.score_answers(self.scorer, [self.prompt.value], [answer])[0]

    def _generate(self, request: int) -> None:
        with self._lock:
            if request != self._request:           # a newer request came while we waited
                return
            compare = self.compare.value
            finished = self._write_soup(request)
            if finished is None:
                return
            if not finished:
                self.generations_cancelled += 1
                self.status = "stopped: the sliders moved"
                return
            applied = self.weights
            self.scores = self._scores(self.answer)
            self.scores_view.value = score_bars_html(self.scores)
            if compare:
                self.compare_preference = soups.nearest_combination(applied)
                self.compare_title.value = (f"<b>base model + preference prompt</b> "
                                            f"<code>{self.compare_preference}</code>")
                with self.model.disable_adapter():
                    finished = self._stream(request, self.compare_preference, "compare_answer", self.compare_view)
                if not finished:
                    self.generations_cancelled += 1
                    self.status = "stopped: the sliders moved"
                    return
                self.compare_scores = self._scores(self.compare_answer)
                self.compare_scores_view.value = score_bars_html(self.compare_scores)
            self.generations_finished += 1
            mixes = len(self.segments)
            in_outputs = bool(self.segments) and self.segments[-1]["mix"] == "outputs"
            self.status = ("weights: " + ", ".join(f"{k} {v:.2f}" for k, v in applied.items() if v > 0)
                           + (" · mixed in outputs" if in_outputs else "")
                           + (f" · {mixes} mixes wrote this answer" if mixes > 1 else ""))

    # ---- display --------------------------------------------------------------------------

    def _show_boxes(self) -> None:
        self.advanced_box.layout.display = None if self.advanced.value else "none"
        self.compare_box.layout.display = None if self.compare.value else "none"

    def _show_status(self, change) -> None:
        self.status_view.value = f"<small>{html.escape(change['new'])}</small>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
