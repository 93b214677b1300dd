"""AI feedback as in MORLAIF (Williams 2024): the local model judges one principle at a time.

For each preference side the judge sees the instruction, two responses and one question,
"Which response is {principle}, regardless of other perspectives? Answer only A or B.", and we
read the next-token log-probabilities of "A" and "B" instead of sampling an answer:

    p_AB = softmax(logit_A, logit_B)[A]          responses shown as (a, b)
    p_BA = softmax(logit_A, logit_B)[A]          responses shown as (b, a): the chance b wins
    P(a better) = (p_AB + (1 - p_BA)) / 2        both orders cancel a bias towards a position

A 135M model is a weak judge: the notebook measures how often it agrees with the simulated
annotators and reports the number as it is.

The pointwise judge sees one response alone and one yes/no question, "Is this response {quality}?
Answer only Yes or No.", and scores it by

    s(x, y) = logit_Yes - logit_No = log P("Yes") - log P("No")

A pair is then decided by s(chosen) > s(rejected). Nothing is shown in an order, so there is no
position bias to cancel (Zheng et al. 2023 on LLM judges: pairwise judges favour a position).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models import format_chat
from ..preferences import get_preference

# The principle each side's judge is asked about (the paper's preference texts, as a comparison).
PRINCIPLES = {
    "P1A": "easier to understand for an elementary school student",
    "P1B": "more expert, something only a PhD student in that specific field could understand",
    "P2A": "more concise and to the point, without being verbose",
    "P2B": "more informative, without missing any background information",
    "P3A": "friendlier, wittier and funnier, like a close friend",
    "P3B": "more unfriendly",
    "P3C": "more sassy",
    "P3D": "more sarcastic",
}


# The same principles, asked of one response at a time (pointwise judging).
POINTWISE_QUALITIES = {
    "P1A": "easy to understand for an elementary school student",
    "P1B": "expert, something only a PhD student in that specific field could understand",
    "P2A": "concise and to the point, without being verbose",
    "P2B": "informative, without missing any background information",
    "P3A": "friendly, witty and funny, like a close friend",
    "P3B": "unfriendly",
    "P3C": "sassy",
    "P3D": "sarcastic",
}


def judge_prompt(side: str, instruction: str, response_a: str, response_b: str) -> str:
    """The user message the judge answers (the chat template is added by `format_chat`)."""
    principle = PRINCIPLES[get_preference(side).code]
    return (f"Question: {instruction}\n\nResponse A: {response_a}\n\nResponse B: {response_b}\n\n"
            f"Which response is {principle}, regardless of other perspectives? Answer only A or B.")


def pointwise_prompt(side: str, instruction: str, response: str) -> str:
    """The user message of the pointwise judge: one response, one yes/no question."""
    quality = POINTWISE_QUALITIES[get_preference(side).code]
    return (f"Question: {instruction}\n\nResponse: {response}\n\n"
            f"Is this response {quality}? Answer only Yes or No.")


def _answer_ids(tokenizer, answers: tuple[str, str] = ("A", "B")) -> tuple[int, int]:
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in answers]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"The judge needs {answers[0]!r} and {answers[1]!r} to be single tokens; this tokenizer "
                         f"gives {ids}.")
    return ids[0][0], ids[1][0]


def _first_ids(tokenizer, answers: tuple[str, str]) -> tuple[int, int]:
    """The first token of each answer word (SmolLM2: "Yes" and "No" are one token each)."""
    ids = [tokenizer.encode(t, add_special_tokens=False)[0] for t in answers]
    if ids[0] == ids[1]:
        raise ValueError(f"{answers[0]!r} and {answers[1]!r} start with the same token {ids[0]} in this tokenizer; "
                         f"the judge cannot tell them apart.")
    return ids[0], ids[1]


@torch.no_grad()
def _last_logits(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Next-token logits after each chat-formatted text, (len(texts), vocab), fp32."""
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    # left padding: positions count real tokens only, as in generation
    position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    # logits_to_keep=1: only the answer position needs the (large) vocabulary projection
    return model(**enc, position_ids=position_ids, logits_to_keep=1).logits[:, -1, :].float()


def judge_pointwise(model, tokenizer, side: str, instructions, responses, *, batch_size: int = 8,
                    progress: bool = False) -> list[float]:
    """s = log P("Yes") - log P("No") per response: how strongly the judge says it has the side's quality.

    Each response is judged alone (batched for speed; padding does not change a row's numbers
    beyond float rounding)."""
    if len(instructions) != len(responses):
        raise ValueError(f"Got {len(instructions)} instructions and {len(responses)} responses; give one of each.")
    id_yes, id_no = _first_ids(tokenizer, ("Yes", "No"))
    texts = [format_chat(tokenizer, pointwise_prompt(side, i, r)) for i, r in zip(instructions, responses)]
    scores: list[float] = []
    for start in tqdm(range(0, len(texts), batch_size), desc=f"pointwise {side}", disable=not progress):
        logits = _last_logits(model, tokenizer, texts[start:start + batch_size])     # (batch, vocab)
        scores += (logits[:, id_yes] - logits[:, id_no]).tolist()                    # (batch,)
    return scores


def pointwise_agreement(model, tokenizer, pairs: list[dict], batch_size: int = 8, progress: bool = False) -> dict:
    """How often the pointwise judge scores a pair's chosen response above its rejected one, per side
    and overall (equal scores count as undecided: neither agreement nor disagreement)."""
    if not pairs:
        raise ValueError("No pairs to judge; pass a non-empty list of pair records (e.g. load_pairs('pairs_eval')).")
    per_side, margins = {}, []
    for side in sorted({p["preference"] for p in pairs}):
        group = [p for p in pairs if p["preference"] == side]
        scores = judge_pointwise(model, tokenizer, side, [p["instruction"] for p in group] * 2,
                                 [p["chosen"] for p in group] + [p["rejected"] for p in group],
                                 batch_size=batch_size, progress=progress)
        side_margins = [c - r for c, r in zip(scores[:len(group)], scores[len(group):])]
        per_side[side] = {"n": len(group), "agreement": sum(m > 0 for m in side_margins) / len(group)}
        margins += side_margins
    decided, n_decided = decided_agreement([0.5 + 0.5 * np.sign(m) for m in margins])
    return {"n": len(pairs), "agreement": sum(m > 0 for m in margins) / len(margins),
            "decided_agreement": decided, "decided": n_decided, "per_side": per_side,
            "margins": [round(m, 4) for m in margins]}


@torch.no_grad()
def judge_orders(model, tokenizer, side: str, instructions, responses_a, responses_b, *, batch_size: int = 8,
                 progress: bool = False) -> tuple[list[float], list[float]]:
    """(p_AB, p_BA) per pair: P("A") with the pair shown as (a, b), and as (b, a).

    Both orders of one pair share a batch, in a canonical order (sorted by text), so swapping a
    and b gives bit-identical numbers: judge_pairs(a, b) == 1 - judge_pairs(b, a) exactly.
    """
    n = len(instructions)
    if not (len(responses_a) == len(responses_b) == n):
        raise ValueError(f"Got {n} instructions, {len(responses_a)} responses_a and {len(responses_b)} "
                         f"responses_b; give one of each per pair.")
    id_a, id_b = _answer_ids(tokenizer)
    texts_ab = [format_chat(tokenizer, judge_prompt(side, i, a, b)) for i, a, b in zip(instructions, responses_a, responses_b)]
    texts_ba = [format_chat(tokenizer, judge_prompt(side, i, b, a)) for i, a, b in zip(instructions, responses_a, responses_b)]
    per_batch = max(1, batch_size // 2)            # pairs per forward pass (2 prompts each)
    p_ab, p_ba = [0.0] * n, [0.0] * n
    for start in tqdm(range(0, n, per_batch), desc=f"judge {side}", disable=not progress):
        idx = list(range(start, min(n, start + per_batch)))
        texts, slots = [], []
        for i in idx:
            for text, slot in sorted([(texts_ab[i], (i, "ab")), (texts_ba[i], (i, "ba"))]):
                texts.append(text)
                slots.append(slot)
        logits = _last_logits(model, tokenizer, texts)                 # (2 * pairs, vocab)
        # p = softmax over the two answer tokens only
        p = torch.softmax(logits[:, [id_a, id_b]], dim=-1)[:, 0]   # (2 * pairs,)
        for (i, order), value in zip(slots, p.tolist()):
            (p_ab if order == "ab" else p_ba)[i] = value
    return p_ab, p_ba


def judge_pairs(model, tokenizer, side: str, instructions, responses_a, responses_b, batch_size: int = 8,
                progress: bool = False) -> list[float]:
    """P(response a is better for `side`) per pair, averaged over both presentation orders."""
    p_ab, p_ba = judge_orders(model, tokenizer, side, instructions, responses_a, responses_b,
                              batch_size=batch_size, progress=progress)
    # P(a better) = (p_AB + (1 - p_BA)) / 2
    return [(x + (1.0 - y)) / 2 for x, y in zip(p_ab, p_ba)]


def judge_label(model, tokenizer, side: str, instructions, responses_a, responses_b, batch_size: int = 8,
                tie_band: float = 0.0) -> list[str]:
    """"A" / "B" per pair from `judge_pairs`; "tie" when |P(a better) - 0.5| < tie_band."""
    probs = judge_pairs(model, tokenizer, side, instructions, responses_a, responses_b, batch_size=batch_size)
    return ["tie" if abs(p - 0.5) < tie_band else ("A" if p > 0.5 else "B") for p in probs]


def sample_per_side(pairs: list[dict], n: int, seed: int = 0) -> list[dict]:
    """Up to n pairs of every side, drawn without replacement (seeded), sides in code order."""
    rng = np.random.default_rng(seed)
    sample = []
    for side in sorted({p["preference"] for p in pairs}):
        group = [p for p in pairs if p["preference"] == side]
        sample += [group[i] for i in sorted(rng.choice(len(group), size=min(n, len(group)), replace=False))]
    return sample


def decided_agreement(p_chosen) -> tuple[float, int]:
    """Agreement on the pairs the judge decided: p_chosen exactly 1/2 (both orders cancel) is no
    verdict, neither agreement nor disagreement. Returns (agreement on decided pairs, how many)."""
    decided = [p for p in p_chosen if p != 0.5]
    return (sum(p > 0.5 for p in decided) / len(decided) if decided else float("nan")), len(decided)


def agreement_record(result: dict, pairs: list[dict]) -> dict:
    """judge_agreement's result as a JSON record: each p_chosen (rounded) beside the id of its pair
    (judge_agreement goes through the sides in code order, each side's pairs in the order given)."""
    ordered = [p for side in sorted({p["preference"] for p in pairs}) for p in pairs if p["preference"] == side]
    record = {k: v for k, v in result.items() if k != "p_chosen"}
    record["pair_ids"] = [p["pair_id"] for p in ordered]
    record["p_chosen"] = [round(p, 4) for p in result["p_chosen"]]
    return record


def judge_agreement(model, tokenizer, pairs: list[dict], batch_size: int = 8, progress: bool = False) -> dict:
    """How often the judge prefers the pair's chosen response, per side and overall.

    The judge is order-symmetric, so passing (chosen, rejected) as (a, b) gives nothing away.
    Also reports the position bias: mean of p_AB + p_BA - 1 (0 for a judge without one).
    """
    if not pairs:
        raise ValueError("No pairs to judge; pass a non-empty list of pair records (e.g. load_pairs('pairs_eval')).")
    per_side, probs, bias = {}, [], []
    for side in sorted({p["preference"] for p in pairs}):
        group = [p for p in pairs if p["preference"] == side]
        p_ab, p_ba = judge_orders(model, tokenizer, side, [p["instruction"] for p in group],
                                  [p["chosen"] for p in group], [p["rejected"] for p in group],
                                  batch_size=batch_size, progress=progress)
        p_chosen = [(x + 1.0 - y) / 2 for x, y in zip(p_ab, p_ba)]
        per_side[side] = {"n": len(group), "agreement": sum(p > 0.5 for p in p_chosen) / len(group)}
        probs += p_chosen
        bias += [x + y - 1.0 for x, y in zip(p_ab, p_ba)]
    return {"n": len(pairs), "agreement": sum(p > 0.5 for p in probs) / len(probs),
            "position_bias": sum(bias) / len(bias), "per_side": per_side, "p_chosen": probs}
