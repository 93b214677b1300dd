"""Notebook 00's helpers: answer instructions under every preference combination."""
from __future__ import annotations

from .models import generate
from .preferences import combinations, parse_combination


def answers_per_combination(model, tokenizer, instructions: list[str], combos: list[str] | None = None,
                            **generate_kwargs) -> list[dict]:
    """One answer per (instruction, combination), by preference prompting: rows for a table/plot."""
    combos = combos or combinations()
    jobs = [(ins, c) for ins in instructions for c in combos]
    answers = generate(model, tokenizer, [ins for ins, _ in jobs], preference=[c for _, c in jobs],
                       **generate_kwargs)
    rows = []
    for (ins, combo), answer in zip(jobs, answers):
        names = " + ".join(p.name for p in parse_combination(combo))
        rows.append({"instruction": ins, "combination": combo, "sides": names,
                     "answer": answer, "words": len(answer.split())})
    return rows


def mean_words_by_side(rows: list[dict]) -> dict[str, float]:
    """Average answer length (words) of the rows whose combination contains each side."""
    out: dict[str, list[int]] = {}
    for row in rows:
        for side in row["combination"].split("+"):
            out.setdefault(side, []).append(row["words"])
    return {side: sum(v) / len(v) for side, v in sorted(out.items())}
