"""Notebook 00 (the tour): which combination does this user need?"""
from __future__ import annotations

from ..preferences import combination_code, parse_combination
from .report import report


def check_combination(answer: str) -> bool:
    """Notebook 00: the combination for a user who wants an answer a child understands, short, and blunt."""
    try:
        parse_combination(answer)
    except ValueError as err:
        return report(False, str(err))
    code = combination_code(answer)
    wanted = "P1A+P2A+P3B"
    if code == wanted:
        return report(True, "P1A (elementary) + P2A (concise) + P3B (unfriendly): one side per dimension.")
    sides = set(code.split("+"))
    missing = sorted(set(wanted.split("+")) - sides)
    return report(False, f"{code} is a valid combination, but this user needs {', '.join(missing)} "
                          f"(elementary = P1A, concise = P2A, blunt/unfriendly = P3B).")
