"""A fixed suite of degenerate answers: the cheap tricks a policy finds against measurable annotators.

From one instruction and one normal answer to it, `hack_answers` builds one answer of every kind in
HACK_KINDS, each a trick that a reward made of simple signals could fall for:

    dont_know          "I do not know that."                        short and "concise"
    good_question      "Good question."                             short, friendly, says nothing
    restatement        "You want to know why the sky is blue."      a one-line restatement of the question
    refusal            "I'm sorry, but I can't help with that."      a refusal
    pasted_twice       the answer, then the same answer again        twice the words, no new information
    repeated_sentence  the answer's first sentence, 3 to 6 times     a loop of whole sentences
    rare_words         ten rare words in a row                       rare vocabulary, no sentence
    shuffled           the answer's words in random order            same words, no sentences
    off_topic          a normal answer to a different question       fluent, about something else
    prompt_echo        "Sure! <the instruction>"                     the question given back
    truncated          the answer cut mid-word at 20-40% of its words   stops early, in the middle of a word

Everything is deterministic given the seed. `hack_candidates` turns candidate rows into hack rows
(style "hack:<kind>", id "<prompt_id>-hack-<kind>") that can be appended to the candidate pool and
paired with the normal answers by `pairs.make_preference_pairs`, so that reward models see, and learn
to rank low, the answers the annotators penalise (tests/test_hacks.py checks that every hack scores
clearly below a normal answer on every side).
"""
from __future__ import annotations

import json
import math
import re
import zlib

import numpy as np

from . import annotators

HACK_KINDS = ("dont_know", "good_question", "restatement", "refusal", "pasted_twice", "repeated_sentence",
              "rare_words", "shuffled", "off_topic", "prompt_echo", "truncated")
HACK_PREFIX = "hack:"            # style of a hack row: "hack:<kind>"

DONT_KNOW = ("I do not know that.", "I don't know.", "I have no idea, sorry.")
GOOD_QUESTION = ("Good question.", "That is a great question!", "A good question, not an answer.")
RESTATEMENTS = ("You want to know {body}.", "So the question is {body}.", "This is about {body}.")
REFUSALS = ("I'm sorry, but I can't help with that.", "As an AI, I cannot answer questions about {topic}.",
            "I'm afraid I can't discuss that. Please ask someone else.")
ECHOES = ("Sure! {instruction}", "{instruction}", "Great, let me answer: {instruction}")
# Padding for `rare_words` when the answer has fewer than ten rare words of its own.
RARE_WORDS = ("quintessential", "epistemological", "juxtaposition", "heterogeneous", "paradigmatic",
              "phenomenological", "idiosyncratic", "perspicacious", "ubiquitous", "obfuscation",
              "circumlocution", "sesquipedalian", "antediluvian", "incontrovertible", "recalcitrant")
# Off-topic answers when no other candidate is given: normal answers about unrelated things. The one
# used is the first (in seeded order) that shares no topic word with the instruction.
OFF_TOPIC_TEXTS = (
    "The bicycle was invented in the early nineteenth century. The first models had no pedals: riders "
    "pushed themselves along with their feet. Pedals, chains and air-filled tyres came later and made "
    "cycling popular across Europe.",
    "To repot a cactus, wear thick gloves and wrap the plant in folded newspaper. Choose a pot with a "
    "drainage hole, fill it with gritty soil, and wait a week before watering so that damaged roots can heal.",
    "Jazz grew out of New Orleans around 1900, mixing blues, ragtime and brass-band marches. Musicians "
    "improvised over a shared chord progression, and the records of Louis Armstrong spread the style worldwide.",
    "A chess opening should bring the knights and bishops out quickly, control the centre squares and "
    "castle the king early. Moving the same piece twice in the opening usually wastes time.",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def hack_seed(seed: int, key: str) -> int:
    """One integer seed per (seed, key): the same prompt gets the same hacks in any pool."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(key.encode("utf-8"))]).generate_state(1)[0])


def _body(instruction: str) -> str:
    text = instruction.strip().rstrip("?.! ")
    return text[:1].lower() + text[1:]


def _topic_phrase(instruction: str) -> str:
    topic = [w for w in annotators.content_words(instruction) if w not in annotators.TASK_WORDS]
    return " and ".join(dict.fromkeys(topic[:2])) or "that"


def _first_sentence(answer: str) -> str:
    for s in _SENTENCE_END.split(answer.strip()):
        if len(annotators.words(s)) >= 3:
            return s.strip()
    return answer.strip()


def _rare_words(answer: str, rng: np.random.Generator, n: int = 10) -> str:
    own = [w for w in dict.fromkeys(annotators.words(answer))
           if len(w) >= 7 and not annotators._is_easy(w) and w not in annotators.FUNCTION_WORDS]
    own = [own[i] for i in rng.permutation(len(own))][:n]
    pad = [RARE_WORDS[i] for i in rng.permutation(len(RARE_WORDS)) if RARE_WORDS[i] not in own]
    chosen = (own + pad)[:n]
    text = " ".join(chosen)
    return text[:1].upper() + text[1:] + "."


def _shuffled(answer: str, rng: np.random.Generator) -> str:
    tokens = answer.split()
    return " ".join(tokens[i] for i in rng.permutation(len(tokens)))


def _truncated(answer: str, rng: np.random.Generator) -> str:
    """The answer cut inside a word (of 4+ letters) at 20-40% of its words (10-60% if need be), in running
    text where there is some (a list item cut to "3. Low Interest Rate" looks like a finished one)."""
    spans = [m for m in re.finditer(r"\S+", answer)]
    n = len(spans)
    if n == 0:
        return ""
    line_of = lambda m: answer[answer.rfind("\n", 0, m.start()) + 1: m.start()]     # noqa: E731
    def candidates(lo_frac, hi_frac, prose_only):
        lo, hi = max(1, math.ceil(lo_frac * n)), max(1, math.floor(hi_frac * n))
        return [i for i in range(lo, min(hi, n - 1) + 1) if re.match(r"[A-Za-z]{4,}", spans[i].group())
                and not (prose_only and annotators._is_list_line(line_of(spans[i]) + "x"))]

    picks = (candidates(0.2, 0.4, True) or candidates(0.1, 0.6, True) or candidates(0.2, 0.4, False)
             or [min(max(1, math.ceil(0.2 * n)), n - 1)])
    m = spans[picks[int(rng.integers(len(picks)))]]
    letters = len(re.match(r"[A-Za-z]*", m.group()).group())
    keep = int(rng.integers(1, letters)) if letters >= 2 else 0   # 1 .. letters-1 letters of the word
    return answer[: m.start() + keep].rstrip()


def _off_topic_text(instruction: str, rng: np.random.Generator) -> str:
    order = [OFF_TOPIC_TEXTS[i] for i in rng.permutation(len(OFF_TOPIC_TEXTS))]
    overlaps = [annotators.topic_overlap(instruction, t) or 0.0 for t in order]
    return order[int(np.argmin(overlaps))]       # the first with the smallest overlap (0 if any)


def hack_answers(instruction: str, answer: str, seed: int = 0, *, off_topic: str | None = None,
                 kinds=HACK_KINDS) -> list[dict]:
    """Degenerate answers to `instruction`, built from a normal `answer`: [{"kind", "text"}] in `kinds` order.

    `off_topic`: a normal answer to a different instruction (default: one of OFF_TOPIC_TEXTS that
    shares no topic word with this instruction). Deterministic given `seed`.
    """
    unknown = [k for k in kinds if k not in HACK_KINDS]
    if unknown:
        raise ValueError(f"Unknown hack kinds {unknown}; use some of {', '.join(HACK_KINDS)}.")
    if not answer.strip():
        raise ValueError("hack_answers needs a non-empty normal answer to build the hacks from.")
    rng = np.random.default_rng(seed)
    pick = lambda options: options[int(rng.integers(len(options)))]   # noqa: E731
    build = {
        "dont_know": lambda: pick(DONT_KNOW),
        "good_question": lambda: pick(GOOD_QUESTION),
        "restatement": lambda: pick(RESTATEMENTS).format(body=_body(instruction)),
        "refusal": lambda: pick(REFUSALS).format(topic=_topic_phrase(instruction)),
        "pasted_twice": lambda: answer.strip() + pick(("\n\n", " ", "\n")) + answer.strip(),
        "repeated_sentence": lambda: " ".join([_first_sentence(answer)] * int(rng.integers(3, 7))),
        "rare_words": lambda: _rare_words(answer, rng),
        "shuffled": lambda: _shuffled(answer, rng),
        "off_topic": lambda: (lambda fixed: off_topic.strip() if off_topic else fixed)(_off_topic_text(instruction, rng)),
        "prompt_echo": lambda: pick(ECHOES).format(instruction=instruction.strip()),
        "truncated": lambda: _truncated(answer, rng),
    }
    # every kind draws from the generator in HACK_KINDS order, so a subset gives the same texts
    texts = {kind: build[kind]() for kind in HACK_KINDS}
    return [{"kind": kind, "text": texts[kind]} for kind in kinds]


def is_hack(candidate: dict) -> bool:
    return str(candidate.get("style", "")).startswith(HACK_PREFIX)


def pool_with_hacks(text: str, seed: int = 0, split: str | None = "train", source: str = "candidates"
                    ) -> tuple[list[str], list[dict]]:
    """A candidate pool's JSONL text -> (its normal lines, unchanged, byte for byte; fresh hack rows).
    Hack rows already in the pool are dropped (they are rebuilt), so adding hacks twice changes nothing.
    `source` names the file in error messages."""
    lines, rows = [], []
    for n, line in enumerate(text.split("\n"), 1):     # not splitlines: a response may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}, line {n}: not JSON ({err.msg}).") from None
        if not is_hack(row):
            lines.append(line)
            rows.append(row)
    return lines, hack_candidates(rows, seed=seed, split=split)


def hack_candidates(candidates: list[dict], seed: int = 0, split: str | None = "train", *,
                    source_style: str = "none", kinds=HACK_KINDS) -> list[dict]:
    """Hack rows for every prompt of `split` (None: all) in a candidate pool, to append to the pool.

    Each prompt's hacks are built from its `source_style` candidate (the answer without a preference
    prompt); its off-topic answer is the source answer of another prompt of the same split, from a
    different category where there is one, that shares no topic word with the instruction (else one
    of OFF_TOPIC_TEXTS). Rows: the candidate keys, style "hack:<kind>", id "<prompt_id>-hack-<kind>",
    "source_id", "seed" (the source's sampling seed, so the pool keeps one) and "hack_seed". Existing
    hack rows in `candidates` are ignored.
    """
    normal = [c for c in candidates if not is_hack(c) and (split is None or c["split"] == split)]
    sources = {}
    for c in sorted(normal, key=lambda c: c["id"]):
        if c["style"] == source_style and c["response"].strip():
            sources[c["prompt_id"]] = c
    rows = []
    for prompt_id, src in sorted(sources.items()):
        prompt_seed = hack_seed(seed, prompt_id)
        rng = np.random.default_rng(prompt_seed)
        others = [o for o in sources.values() if o["prompt_id"] != prompt_id and o["split"] == src["split"]]
        other_category = [o for o in others if o.get("category") != src.get("category")] or others
        off_topic = None
        for i in rng.permutation(len(other_category)):
            if annotators.topic_overlap(src["instruction"], other_category[i]["response"]) == 0.0:
                off_topic = other_category[i]["response"]
                break
        for hack in hack_answers(src["instruction"], src["response"], prompt_seed, off_topic=off_topic, kinds=kinds):
            rows.append({"id": f"{prompt_id}-hack-{hack['kind']}", "prompt_id": prompt_id, "split": src["split"],
                         "category": src.get("category"), "instruction": src["instruction"],
                         "style": HACK_PREFIX + hack["kind"], "response": hack["text"],
                         "source_id": src["id"], "seed": src.get("seed"), "hack_seed": int(seed)})
    return rows
