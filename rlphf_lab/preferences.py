"""The preference sides of Personalized Soups (Jang et al. 2023) and their combinations.

Three dimensions, each with two opposite sides; a user's preference is one side per dimension,
so there are 2 x 2 x 2 = 8 combinations. The prompts are the paper's own texts.

    >>> parse_combination("P1A+P2B+P3A")
    (Preference('P1A', ...), Preference('P2B', ...), Preference('P3A', ...))
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Preference:
    code: str        # "P2A"
    dimension: str   # "P2"
    name: str        # "concise"
    prompt: str      # the text appended to the instruction

    @property
    def dimension_name(self) -> str:
        return DIMENSIONS[self.dimension]


DIMENSIONS = {"P1": "expertise", "P2": "informativeness", "P3": "style"}

PREFERENCES = {p.code: p for p in [
    Preference("P1A", "P1", "elementary",
               "Generate a response that can be easily understood by an elementary school student."),
    Preference("P1B", "P1", "knowledgeable",
               "Generate a response that only a PhD Student in that specific field could understand."),
    Preference("P2A", "P2", "concise",
               "Generate a response that is concise and to the point, without being verbose."),
    Preference("P2B", "P2", "informative",
               "Generate a response that is very informative, without missing any background information."),
    Preference("P3A", "P3", "friendly",
               "Generate a response that is friendly, witty, funny, and humorous, like a close friend."),
    Preference("P3B", "P3", "unfriendly",
               "Generate a response in an unfriendly manner."),
    # Extra style sides from the paper's scaling study (2 x 2 x 4 = 16 combinations).
    Preference("P3C", "P3", "sassy", "Generate a response in a sassy manner."),
    Preference("P3D", "P3", "sarcastic", "Generate a response in a sarcastic manner."),
]}

SIDES = ["P1A", "P1B", "P2A", "P2B", "P3A", "P3B"]          # the six sides used everywhere


def get_preference(code: str) -> Preference:
    """Look up one side by its code ("P2A"); a clear ValueError for anything else."""
    key = str(code).strip().upper()
    if key not in PREFERENCES:
        raise ValueError(f"Unknown preference code {code!r}. Valid codes: {', '.join(PREFERENCES)}.")
    return PREFERENCES[key]


def parse_combination(spec) -> tuple[Preference, ...]:
    """Parse "P1A+P2B+P3A" (or a list of codes) into Preferences, ordered by dimension.

    At most one side per dimension; a partial combination ("P2A", "P1B+P3A") is allowed.
    """
    if isinstance(spec, Preference):
        return (spec,)
    if spec is None or not hasattr(spec, "__iter__"):
        raise ValueError(f"A preference combination is a string like 'P1A+P2B+P3A' or a list of codes, "
                         f"got {spec!r}. Valid codes: {', '.join(PREFERENCES)}.")
    if isinstance(spec, str):
        codes = [c for c in spec.replace(",", "+").replace(" ", "+").split("+") if c]
    else:
        codes = [c.code if isinstance(c, Preference) else c for c in spec]
    if not codes:
        raise ValueError(f"Empty preference combination {spec!r}: give one side per dimension, "
                         f"e.g. 'P1A+P2B+P3A'. Valid codes: {', '.join(PREFERENCES)}.")
    prefs = [get_preference(c) for c in codes]
    seen: dict[str, str] = {}
    for p in prefs:
        if p.dimension in seen:
            raise ValueError(f"{seen[p.dimension]} and {p.code} are both sides of dimension {p.dimension} "
                             f"({DIMENSIONS[p.dimension]}); keep one. Valid codes: {', '.join(PREFERENCES)}.")
        seen[p.dimension] = p.code
    return tuple(sorted(prefs, key=lambda p: p.dimension))


def combination_code(spec) -> str:
    """Canonical string form: ("P3A", "P1A") -> "P1A+P3A"."""
    return "+".join(p.code for p in parse_combination(spec))


def combinations(extended: bool = False) -> list[str]:
    """The 8 evaluation combinations (16 with the P3C/P3D sides when `extended`)."""
    style = ["P3A", "P3B", "P3C", "P3D"] if extended else ["P3A", "P3B"]
    return ["+".join(c) for c in itertools.product(["P1A", "P1B"], ["P2A", "P2B"], style)]


def preference_prompt(spec) -> str:
    """The preference text for a combination: the sides' prompts joined by spaces."""
    return " ".join(p.prompt for p in parse_combination(spec))


def apply_preference(instruction: str, spec=None) -> str:
    """Append the combination's preference prompt to a user instruction (no-op for None)."""
    if spec is None or spec == "" or spec == ():
        return instruction
    return f"{instruction.rstrip()} {preference_prompt(spec)}"


def opposite(code: str) -> str:
    """The other side of a two-sided dimension: P2A <-> P2B (only for the six main sides)."""
    p = get_preference(code)
    if p.code not in SIDES:
        raise ValueError(f"{p.code} has no single opposite; the two-sided codes are {', '.join(SIDES)}.")
    return p.code[:2] + ("B" if p.code[2] == "A" else "A")
