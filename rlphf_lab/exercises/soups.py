"""Notebook 06 (soups): the exact soup's weight delta, sum_i w_i s_i B_i A_i."""
from __future__ import annotations

from .report import report


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
        return report(False, f"your function raised {type(err).__name__}: {err}")
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} = (out, in) like B @ A, got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-5):
        return report(True, "sum_i w_i s_i B_i A_i: each adapter's own product, weighted, then added.")
    ab = sum(weights[n] * s for n, (_, _, s) in factors.items()) / len(factors)
    ab_delta = (sum(weights[n] * B for n, (_, B, _) in factors.items())
                @ sum(weights[n] * A for n, (A, _, _) in factors.items()))
    if torch.allclose(got, ab * ab_delta, atol=1e-4) or torch.allclose(got, ab_delta, atol=1e-4):
        return report(False, "that is the A/B average (sum w B)(sum w A): it contains cross terms B_i A_j. "
                              "Multiply B_i @ A_i for each adapter first, then take the weighted sum.")
    unscaled = sum(weights[n] * B @ A for n, (A, B, _) in factors.items())
    if torch.allclose(got, unscaled, atol=1e-5):
        return report(False, "almost: each adapter's delta is s_i B_i A_i with s_i = alpha_i / r_i; include s.")
    return report(False, "not equal to sum_i w_i s_i B_i A_i; check each term (w * s * B @ A).")
