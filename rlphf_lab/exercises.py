"""`check_...()` functions for the notebooks' exercises: each says right or not, and why."""
from __future__ import annotations

from .preferences import combination_code, parse_combination


def _result(ok: bool, message: str) -> bool:
    print(("Correct! " if ok else "Not yet: ") + message)
    return ok


def check_combination(answer: str) -> bool:
    """Notebook 00: the combination for a user who wants an answer a child understands, short, and blunt."""
    try:
        parse_combination(answer)
    except ValueError as err:
        return _result(False, str(err))
    code = combination_code(answer)
    wanted = "P1A+P2A+P3B"
    if code == wanted:
        return _result(True, "P1A (elementary) + P2A (concise) + P3B (unfriendly): one side per dimension.")
    sides = set(code.split("+"))
    missing = sorted(set(wanted.split("+")) - sides)
    return _result(False, f"{code} is a valid combination, but this user needs {', '.join(missing)} "
                          f"(elementary = P1A, concise = P2A, blunt/unfriendly = P3B).")


def check_worst_case(fn) -> bool:
    """Notebook 02: your worst-case scalarizer must equal min_i w_i r_i per row, never across rows."""
    import torch

    from .rewards.scalarize import worst_case

    rewards = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.2, -0.1], [4.0, 4.0, 4.0]])
    weights = torch.tensor([1.0, 0.5, 2.0])
    try:
        got = torch.as_tensor(fn(rewards, weights), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return _result(False, f"your function raised {type(err).__name__}: {err}")
    want = worst_case(rewards, weights)
    if got.shape != want.shape:
        return _result(False, f"expected shape {tuple(want.shape)} (one reward per row), got {tuple(got.shape)}. "
                              f"Reduce over dim=-1 (the objectives), not the whole tensor.")
    if not torch.allclose(got, want):
        return _result(False, f"expected {want.tolist()}, got {got.tolist()}. Multiply by the weights first, then take the min over dim=-1.")
    return _result(True, "min over the objective axis of w * r, row by row.")


def check_preference_prob(fn) -> bool:
    """Notebook 03: P(y_a > y_b | x, h) = sigmoid(<phi(x, y_a) - phi(x, y_b), w_h>), for a batch of pairs."""
    import torch

    phi_a = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])
    phi_b = torch.tensor([[0.0, 1.0, 2.0], [0.5, -1.0, 0.0]])
    w = torch.tensor([2.0, 1.0, -3.0])
    try:
        got = torch.as_tensor(fn(phi_a, phi_b, w), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return _result(False, f"your function raised {type(err).__name__}: {err}")
    want = torch.sigmoid(((phi_a - phi_b) * w).sum(-1))       # [sigmoid(1), sigmoid(0)]
    if got.shape != want.shape:
        return _result(False, f"expected shape {tuple(want.shape)} (one probability per pair), got {tuple(got.shape)}. "
                              f"Take the dot product over the feature axis (dim=-1) only.")
    if torch.allclose(got, 1 - want, atol=1e-5):
        return _result(False, "you have P(b beats a): the difference is phi(a) - phi(b), not the other way round.")
    if torch.allclose(got, ((phi_a - phi_b) * w).sum(-1), atol=1e-5):
        return _result(False, "that is the reward difference (a logit); squash it with torch.sigmoid.")
    if not torch.allclose(got, want, atol=1e-5):
        return _result(False, f"expected {[round(v, 4) for v in want.tolist()]}, got {[round(v, 4) for v in got.tolist()]}. "
                              f"Compute sigmoid(<phi_a - phi_b, w>) row by row.")
    return _result(True, f"{[round(v, 3) for v in want.tolist()]}: the second pair has identical features, "
                         f"so the rater is indifferent (0.5) whatever w is.")


def check_soup_delta(fn) -> bool:
    """Notebook 06: fn(factors, weights) -> the exact soup's weight change for one layer,
    delta_W = sum_i w_i s_i B_i A_i, where factors = {name: (A (r, in), B (out, r), s)}."""
    import torch

    gen = torch.Generator().manual_seed(0)
    factors = {name: (torch.randn(4, 6, generator=gen), torch.randn(5, 4, generator=gen), s)
               for name, s in (("P2A", 2.0), ("P3A", 0.5))}
    weights = {"P2A": 0.25, "P3A": 0.75}
    want = sum(weights[n] * s * B @ A for n, (A, B, s) in factors.items())
    try:
        got = torch.as_tensor(fn(factors, weights), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return _result(False, f"your function raised {type(err).__name__}: {err}")
    if got.shape != want.shape:
        return _result(False, f"expected shape {tuple(want.shape)} = (out, in) like B @ A, got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-5):
        return _result(True, "sum_i w_i s_i B_i A_i: each adapter's own product, weighted, then added.")
    ab = sum(weights[n] * s for n, (_, _, s) in factors.items()) / len(factors)
    ab_delta = (sum(weights[n] * B for n, (_, B, _) in factors.items())
                @ sum(weights[n] * A for n, (A, _, _) in factors.items()))
    if torch.allclose(got, ab * ab_delta, atol=1e-4) or torch.allclose(got, ab_delta, atol=1e-4):
        return _result(False, "that is the A/B average (sum w B)(sum w A): it contains cross terms B_i A_j. "
                              "Multiply B_i @ A_i for each adapter first, then take the weighted sum.")
    unscaled = sum(weights[n] * B @ A for n, (A, B, _) in factors.items())
    if torch.allclose(got, unscaled, atol=1e-5):
        return _result(False, "almost: each adapter's delta is s_i B_i A_i with s_i = alpha_i / r_i; include s.")
    return _result(False, "not equal to sum_i w_i s_i B_i A_i; check each term (w * s * B @ A).")
