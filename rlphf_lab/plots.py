"""Matplotlib figures the notebooks show. Each function draws on a given Axes (or makes one)
and returns the Figure; importing this module draws nothing."""
from __future__ import annotations


def _axes(ax=None, figsize=(6, 3.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def plot_words_by_side(mean_words: dict[str, float], ax=None):
    """Bar chart: average answer length (words) under each preference side (notebook 00)."""
    from .preferences import get_preference

    fig, ax = _axes(ax)
    sides = list(mean_words)
    colors = ["tab:blue" if s.endswith("A") else "tab:orange" for s in sides]
    ax.bar([f"{s}\n{get_preference(s).name}" for s in sides], [mean_words[s] for s in sides], color=colors)
    ax.set_ylabel("mean answer length (words)")
    ax.set_title("Does the model follow the preference prompt?")
    fig.tight_layout()
    return fig


def _mean_by_label(rows: list[dict], keys: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """{label: (mean of keys[0], mean of keys[1], ...)} over rows, labels in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("label", ""), []).append(row)
    return {label: tuple(sum(r[k] for r in members) / len(members) for k in keys) for label, members in groups.items()}


def plot_pareto_front(rows: list[dict], x: str = "P2A", y: str = "P2B", reference: list[dict] | None = None,
                      ax=None, title: str | None = None):
    """Mean score on side `x` against mean score on side `y` along a soup sweep (notebook 06).

    rows: from `soups.sweep_weights` (one per prompt and weight; averaged per label, joined in order).
    reference: rows from `soups.generate_and_score` for single adapters or the prompting baseline,
    drawn as separate labelled points.
    """
    from .preferences import get_preference

    fig, ax = _axes(ax, figsize=(5.5, 4.5))
    front = _mean_by_label(rows, (x, y))
    xs, ys = [p[0] for p in front.values()], [p[1] for p in front.values()]
    ax.plot(xs, ys, "-o", color="tab:blue", label="soup sweep")
    for label, (px, py) in front.items():
        ax.annotate(label, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8, color="tab:blue")
    if reference:
        for (label, (px, py)), marker in zip(_mean_by_label(reference, (x, y)).items(), "s^vD*P"):
            ax.plot(px, py, marker, markersize=8, linestyle="none", label=label)
    ax.set_xlabel(f"mean {x} ({get_preference(x).name}) score")
    ax.set_ylabel(f"mean {y} ({get_preference(y).name}) score")
    ax.set_title(title or f"Soup weights from {x} to {y}: the trade-off")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_scalarizer_contours(names=None, weights=None, params=None, lim: float = 3.0, n: int = 101,
                             axes=None, ncols: int = 4):
    """Contours of MORLAIF scalarizers over two objectives' rewards (notebook 02), one panel each.

    names: scalarizer names (default: all of rlphf_lab.rewards.SCALARIZERS); weights: 2 weights or None;
    params: {name: {param: value}}, e.g. {"soft_max_min": {"tau": 0.5}}; axes: one Axes per name, or None.
    """
    import matplotlib.pyplot as plt

    from .rewards.scalarize import SCALARIZERS, contour_grid

    names = list(SCALARIZERS) if names is None else list(names)
    params = params or {}
    if axes is None:
        nrows = -(-len(names) // ncols)
        fig, axes = plt.subplots(nrows, min(ncols, len(names)), figsize=(3.2 * min(ncols, len(names)), 3.0 * nrows),
                                 squeeze=False)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        axes = axes.flat
    axes = list(axes)[:len(names)]
    for name, ax in zip(names, axes):
        X, Y, Z = contour_grid(name, weights, lim=lim, n=n, **params.get(name, {}))
        ax.contourf(X, Y, Z, levels=20, cmap="viridis")
        ax.contour(X, Y, Z, levels=10, colors="white", linewidths=0.5)
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.set_xlabel("reward 1")
        ax.set_ylabel("reward 2")
        ax.set_aspect("equal")
    fig = axes[0].figure
    fig.tight_layout()
    return fig
