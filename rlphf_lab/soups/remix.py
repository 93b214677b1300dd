"""Re-mix mid-answer: one answer, written in turn by several mixes of the adapters.

A slider move while the soup is writing need not throw the answer away. The tokens written so far,
y_<t, stay; the model is re-mixed to the new weights and the same answer goes on from them:

    y_t ~ p_new(y_t | x, y_<t)            x the prompt, y_<t the answer so far (written by the old mix)

The KV cache of x, y_<t belongs to the old mix (its keys and values came from the old weights), so
prompt + prefix is fed again under the new mix: one forward pass over T = |x| + |y_<t| tokens, about
the cost of a prompt a few sentences long, then decoding as usual. The answer records which mix
wrote which tokens (`Segment`), so a widget can colour them.

    answer = RemixAnswer("Why is the sky blue?")
    for piece in continue_answer(model, tok, answer, {"P2A": 1.0}, max_new_tokens=80, should_stop=moved):
        print(piece, end="")                      # stops at the next token once moved() says so
    continue_answer(model, tok, answer, {"P2B": 1.0}, max_new_tokens=80)   # the same answer goes on
    answer.texts(tok)                             # the text each mix wrote; "".join(...) is the answer

Both places to mix continue the same way: mix="weights" re-mixes the model (`set_soup_weights`, or
`fold_soup_weights` with fold=True: base-model decoding speed, equal to the live soup up to bf16
rounding) and samples with `models.stream_token_ids`, the one sampler of `models.generate`;
mix="outputs" decodes from the adapters' mixed log-probabilities (`outputs.mixed_token_steps`).
Each continuation is seeded with `seed`, so it repeats: an answer continued once is a function of
(prompt, prefix, weights, seed), and an answer that no move interrupted is exactly `generate`'s.
max_new_tokens counts the whole answer: a continuation writes at most what the first mix had left.
Callers sharing the model with another thread hold `model_lock(model)` (the widget does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..models import StopLatch, check_sampling, decode_pieces, format_chat, stream_token_ids
from .fold import fold_soup_weights, unfold_soup
from .fronts import check_mix
from .mix import adapter_names, check_weights, set_soup_weights
from .outputs import mixed_token_steps


@dataclass
class Segment:
    """Tokens of an answer written by one mix."""
    weights: dict                           # the weights that wrote them (normalised, every loaded adapter)
    mix: str                                # "weights" or "outputs"
    token_ids: list = field(default_factory=list)

    def label(self) -> str:
        """"P1A 0.17, P2B 0.33" (weights above 0), plus "(outputs)" for the output mixture."""
        text = ", ".join(f"{name} {w:.2f}" for name, w in self.weights.items() if w > 0)
        return text + (" (outputs)" if self.mix == "outputs" else "")


@dataclass
class RemixAnswer:
    """One answer in progress: the prompt, and the segments its mixes wrote, in order."""
    instruction: str
    preference: str | None = None           # a preference prompt appended to the instruction (as in generate)
    segments: list = field(default_factory=list)
    finished: bool = False                  # EOS written or max_new_tokens reached: nothing to continue

    @property
    def token_ids(self) -> list[int]:
        return [t for seg in self.segments for t in seg.token_ids]

    def texts(self, tokenizer) -> list[str]:
        """The text each segment wrote; their concatenation is the answer (a character split between
        two segments' tokens counts for the later one)."""
        out, ids, shown = [], [], ""
        for seg in self.segments:
            ids += seg.token_ids
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if seg is not self.segments[-1]:
                text = text.rstrip("\ufffd")
            out.append(text[len(shown):])
            shown = text
        return out

    def text(self, tokenizer) -> str:
        return "".join(self.texts(tokenizer))


def continue_answer(model, tokenizer, answer: RemixAnswer, weights: dict[str, float], *, mix: str = "weights",
                    fold: bool = False, normalize: bool = True, max_new_tokens: int = 128, temperature: float = 0.7,
                    top_p: float = 0.9, seed: int | None = 0,
                    should_stop: Callable[[], bool] | None = None) -> Iterator[str]:
    """Mix the adapters with `weights` and go on writing `answer`: returns an iterator of the new text pieces.

    The mix is applied, and a new Segment with the weights appended to answer.segments, at once (bad
    weights raise ValueError here, before any token); the tokens arrive in that segment as they are
    sampled. A finished answer raises ValueError. When the iterator ends without `should_stop()` having said stop, answer.finished is True.
    An empty answer (no segments yet) is an ordinary generation: the same text as `models.generate`
    (mix="weights") or `generate_mixed_outputs` (mix="outputs") for the same seed.
    """
    check_mix(mix)
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    if answer.finished:
        raise ValueError("This answer is finished (EOS or max_new_tokens); start a new RemixAnswer.")
    if mix == "weights":
        applied = (fold_soup_weights if fold else set_soup_weights)(model, weights, normalize)
    else:
        loaded = adapter_names(model)
        if not loaded:
            raise ValueError("This model has no LoRA adapters; load some with `load_adapters(model, {...})`.")
        checked = check_weights(weights, loaded, normalize)
        applied = {name: checked.get(name, 0.0) for name in loaded}
        unfold_soup(model)                  # output mixing runs each adapter's own branch on the plain W
    prefix = answer.token_ids
    segment = Segment(weights=applied, mix=mix)
    answer.segments.append(segment)
    sampling = dict(max_new_tokens=max_new_tokens - len(prefix), temperature=temperature, top_p=top_p, seed=seed)
    return _write(model, tokenizer, answer, segment, prefix, sampling, StopLatch(should_stop))


def _write(model, tokenizer, answer: RemixAnswer, segment: Segment, prefix: list[int], sampling: dict,
           stop) -> Iterator[str]:
    """The tokens of one segment: sampled after prompt + prefix, recorded in `segment`, yielded as text."""
    if sampling["max_new_tokens"] < 1:      # the first mixes wrote max_new_tokens already
        answer.finished = True
        return
    if segment.mix == "weights":            # the model is the soup now: the one sampler of models.generate
        ids = stream_token_ids(model, tokenizer, answer.instruction, answer.preference, prefix_ids=prefix,
                               should_stop=stop, **sampling)
    else:                                   # log p_mix = log_softmax(sum_i w_i log p_i), w already normalised
        text = format_chat(tokenizer, answer.instruction, answer.preference)
        steps = mixed_token_steps(model, tokenizer, [text], segment.weights, normalize=False, should_stop=stop,
                                  prefix_ids=prefix, **sampling)
        ids = (int(tokens[0]) for tokens in steps)

    def recorded():
        for token in ids:
            segment.token_ids.append(token)
            yield token

    yield from decode_pieces(tokenizer, recorded(), prefix, stopped=lambda: stop.hit)
    answer.finished = not stop.hit
