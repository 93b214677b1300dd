"""Matplotlib figures the notebooks show. Each function draws on a given Axes (or makes one)
and returns the Figure; importing this module draws nothing."""
from __future__ import annotations

from .tables import group_means


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
    rows = [{"label": "", **r} for r in rows]          # a row without a label belongs to label ""
    return {g["label"]: tuple(g[k] for k in keys) for g in group_means(rows, "label", keys)}


def plot_pareto_front(rows, x: str = "P2A", y: str = "P2B", reference: list[dict] | None = None,
                      ax=None, title: str | None = None):
    """Mean score on side `x` against mean score on side `y` along a soup sweep (notebook 06).

    rows: the dict `soups.pareto_front` returns (sweep, reference points, x and y in one), or rows
    from `soups.sweep_weights` (one per prompt and weight; averaged per label, joined in order).
    reference: rows from `soups.score_soup_answers` for single adapters or the prompting baseline,
    drawn as separate labelled points. Points on the Pareto front of everything drawn (no other
    point is better on both scores) get a black ring.
    """
    from .preferences import get_preference
    from .soups import pareto_optimal

    if isinstance(rows, dict):                     # soups.pareto_front(...)
        front = rows
        rows, reference, x, y = front["sweep"], front["reference"], front["x"], front["y"]
        title = title or f"Soup from {front['start']} to {front['end']}"
    fig, ax = _axes(ax, figsize=(5.5, 4.5))
    front = _mean_by_label(rows, (x, y))
    xs, ys = [p[0] for p in front.values()], [p[1] for p in front.values()]
    ax.plot(xs, ys, "-o", color="tab:blue", label="soup sweep")
    for label, (px, py) in front.items():
        ax.annotate(label, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8, color="tab:blue")
    points = list(front.values())
    if reference:
        for (label, (px, py)), marker in zip(_mean_by_label(reference, (x, y)).items(), "s^vD*Ph"):
            ax.plot(px, py, marker, markersize=8, linestyle="none", label=label)
            points.append((px, py))
    best = [p for p, ok in zip(points, pareto_optimal(points)) if ok]
    ax.scatter([p[0] for p in best], [p[1] for p in best], s=180, facecolors="none", edgecolors="black",
               linewidths=1.0, label="on the Pareto front")
    ax.set_xlabel(f"mean {x} ({get_preference(x).name}) score")
    ax.set_ylabel(f"mean {y} ({get_preference(y).name}) score")
    ax.set_title(title or f"Soup weights from {x} to {y}: the trade-off")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_pareto_fronts(fronts: list[dict], figsize=None):
    """Several `soups.pareto_front` results side by side, one panel each."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fronts), figsize=figsize or (5.5 * len(fronts), 4.8), squeeze=False)
    for front, ax in zip(fronts, axes[0]):
        plot_pareto_front(front, ax=ax)
    fig.tight_layout()
    return fig


def plot_mixing_places(fronts: dict, ax=None, title: str | None = None):
    """Where to mix, on one plot (notebook 06): {"weights": front, "outputs": front} of
    `soups.pareto_front` on the same two sides and prompts, one line per place, with the first
    front's reference points (prompting, single adapters, base model) as markers."""
    from .preferences import get_preference

    fig, ax = _axes(ax, figsize=(6, 4.6))
    first = next(iter(fronts.values()))
    x, y = first["x"], first["y"]
    for (place, front), style in zip(fronts.items(), ("-o", "--s", ":^")):
        means = _mean_by_label(front["sweep"], (x, y))
        ax.plot([m[0] for m in means.values()], [m[1] for m in means.values()], style, label=f"mix in {place}")
    for (label, (px, py)), marker in zip(_mean_by_label(first["reference"], (x, y)).items(), "DvP*hX"):
        ax.plot(px, py, marker, markersize=8, linestyle="none", label=label)
    ax.set_xlabel(f"mean {x} ({get_preference(x).name}) score")
    ax.set_ylabel(f"mean {y} ({get_preference(y).name}) score")
    ax.set_title(title or f"{x} to {y}: mixing in the prompt, the weights or the outputs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig

def plot_sweep_scores(front: dict, ax=None):
    """Mean x and y scores against the soup weight t (0 = start, 1 = end) of one `soups.pareto_front`,
    with the prompting baselines as dashed lines in the same colours: does the soup move smoothly,
    and how far does it reach compared with simply asking?"""
    from .preferences import get_preference

    fig, ax = _axes(ax, figsize=(6, 3.8))
    means = _mean_by_label(front["sweep"], (front["x"], front["y"], "t"))
    ts = [m[2] for m in means.values()]
    refs = _mean_by_label(front["reference"], (front["x"], front["y"]))
    for i, (code, color) in enumerate(((front["x"], "tab:blue"), (front["y"], "tab:orange"))):
        ax.plot(ts, [m[i] for m in means.values()], "-o", color=color, label=f"soup: {code} {get_preference(code).name} score")
        prompt = refs.get(f"prompting {code}")
        if prompt is not None:
            ax.axhline(prompt[i], color=color, linestyle="--", linewidth=1, label=f"prompting {code}: {code} score")
    ax.set_xlabel(f"soup weight t ({front['start']} at 0 -> {front['end']} at 1)")
    ax.set_ylabel("mean annotator score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
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


def plot_score_by_style(table: dict, ax=None, title: str = "Mean reward (normalised) by the style a response was written in"):
    """Heatmap: rows = the preference prompt a candidate was sampled under, columns = reward models."""
    import numpy as np

    styles = list(table)
    sides = list(next(iter(table.values())))
    values = np.array([[table[s][c] for c in sides] for s in styles])
    fig, ax = _axes(ax, figsize=(6.5, 4))
    lim = np.abs(values).max()
    im = ax.imshow(values, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(sides)), [f"RM {c}" for c in sides])
    ax.set_yticks(range(len(styles)), [f"written as {s}" for s in styles])
    for i in range(len(styles)):
        for j in range(len(sides)):
            ax.text(j, i, f"{values[i, j]:+.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_table(rows: list[dict], ax=None, targets: dict | None = None):
    """Bar chart of held-out pair accuracy per side and back end, with the targets as ticks."""
    import numpy as np

    fig, ax = _axes(ax, figsize=(7, 3.5))
    backends = sorted({r["backend"] for r in rows})
    sides = sorted({r["side"] for r in rows})
    width = 0.8 / len(backends)
    for k, backend in enumerate(backends):
        acc = {r["side"]: float(r["eval_accuracy"]) for r in rows if r["backend"] == backend}
        xs = np.arange(len(sides)) + k * width
        ax.bar(xs, [acc.get(s, np.nan) for s in sides], width, label=backend)
    if targets:
        for i, s in enumerate(sides):
            if s in targets:
                ax.hlines(targets[s], i - 0.1, i + 0.8 - 0.1, colors="k", linestyles="--", linewidth=1)
    ax.set_xticks(np.arange(len(sides)) + 0.4 - width / 2, sides)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("held-out pair accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 03: reward features and personalisation
# --------------------------------------------------------------------------------------------

CURVE_STYLE = {  # curve name from rewards.personalize.rfm_experiment -> (label, colour, line style)
    "rfm": ("RFM, random pairs", "tab:blue", "-o"),
    "rfm_active": ("RFM, active pairs", "tab:purple", "-s"),
    "linear": ("linear head on backbone features", "tab:green", "-^"),
    "pooled": ("pooled reward model (no adaptation)", "tab:gray", "--"),
    "oracle": ("the user's true weights (best possible)", "k", ":"),
}


def plot_adaptation_curves(results_low: dict, results_high: dict | None = None,
                           titles=("low disagreement", "high disagreement"), axes=None):
    """Held-out accuracy against k (pairs from the new rater), one panel per population (notebook 03).

    results_*: from `rewards.personalize.rfm_experiment` (or `new_user_curves`); shaded bands are
    +- one standard error over the held-out raters.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [r for r in (results_low, results_high) if r is not None]
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), sharey=True, squeeze=False)
        axes = axes[0]
    for results, title, ax in zip(panels, titles, axes):
        ks = results["ks"]
        for name, (label, color, style) in CURVE_STYLE.items():
            if name not in results:
                continue
            mean = np.array([results[name][k] for k in ks])
            ax.plot(ks, mean, style, color=color, label=label, markersize=4)
            if name in results.get("sem", {}):
                sem = np.array([results["sem"][name][k] for k in ks])
                ax.fill_between(ks, mean - sem, mean + sem, color=color, alpha=0.15, linewidth=0)
        ax.axhline(0.5, color="k", linewidth=0.6, linestyle=":")
        ax.set_xticks(ks)
        ax.set_xlabel("k = labelled pairs from the new rater")
        n = len(results.get("per_rater", []))
        ax.set_title(f"{title} ({n} held-out raters)" if n else title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on the rater's test pairs")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def plot_pooled_by_rater(groups: dict, ax=None):
    """Scatter: how close each held-out rater is to the population's mean preference (x) against the
    pooled reward model's accuracy on that rater (y), one colour per population (notebook 03).

    groups: {population name: (results from rfm_experiment, {rater id: cosine to the mean})}.
    """
    fig, ax = _axes(ax, figsize=(5.5, 3.8))
    for (name, (results, similarity)), color in zip(groups.items(), ("tab:blue", "tab:red", "tab:green")):
        rows = results["per_rater"]
        ax.scatter([similarity[r["rater"]] for r in rows], [r["pooled"] for r in rows], color=color, label=name, alpha=0.8)
    ax.axhline(0.5, color="k", linewidth=0.6, linestyle=":")
    ax.set_xlabel("cosine(rater's true weights, population mean)")
    ax.set_ylabel("pooled model's accuracy on the rater")
    ax.set_title("One reward for everybody serves the typical rater", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_user_weights(weights_by_dim: dict, ax=None, title: str = "Your weights over the preference dimensions"):
    """Bar chart of one user's weights over P1 / P2 / P3 (notebook 03), signs explained on the axis."""
    from .preferences import DIMENSIONS

    signs = {"P1": "(+ expert, - simple)", "P2": "(+ informative, - concise)", "P3": "(+ friendly, - unfriendly)"}
    labels = {d: f"{d} {DIMENSIONS[d]}\n{signs[d]}" for d in signs}
    fig, ax = _axes(ax, figsize=(6, 3.2))
    dims = list(weights_by_dim)
    values = [float(weights_by_dim[d]) for d in dims]
    ax.bar([labels.get(d, d) for d in dims], values, color=["tab:blue" if v >= 0 else "tab:orange" for v in values])
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_ylabel("weight (log-odds per unit of score)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def plot_recovered_vs_true(true, recovered, ax=None, title: str = "Held-out raters: recovered vs true weights"):
    """Scatter of true (x) against recovered (y) weights, one colour per dimension; rows are unit vectors
    (n_raters, 3) so only directions are compared (notebook 03)."""
    import numpy as np

    fig, ax = _axes(ax, figsize=(4.2, 4.0))
    true, recovered = np.asarray(true), np.asarray(recovered)
    from .preferences import DIMENSIONS

    for j, (dim, color) in enumerate(zip([f"{d} {name}" for d, name in DIMENSIONS.items()],
                                         ("tab:blue", "tab:orange", "tab:green"))):
        r = np.corrcoef(true[:, j], recovered[:, j])[0, 1] if len(true) > 1 else float("nan")
        ax.scatter(true[:, j], recovered[:, j], color=color, label=f"{dim} (r = {r:.2f})", alpha=0.8)
    ax.plot([-1, 1], [-1, 1], color="k", linewidth=0.6, linestyle=":")
    ax.set_xlabel("true weight (unit vector)")
    ax.set_ylabel("recovered from the RFM (unit vector)")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Notebook 07: evaluation
# --------------------------------------------------------------------------------------------

def plot_win_rates(table: list[dict], combos: list[str] | None = None, ax=None,
                   title: str = "Win rate against the vanilla model (simulated annotators)"):
    """Grouped bars: one group per combination (+ the average with its bootstrap CI), one bar per method."""
    import numpy as np

    from .preferences import combinations

    combos = combos or combinations()
    fig, ax = _axes(ax, figsize=(11, 3.8))
    groups = combos + ["average"]
    width = 0.8 / max(1, len(table))
    for k, row in enumerate(table):
        xs = np.arange(len(groups)) + k * width
        ys = [float(row.get(g, np.nan)) for g in groups]
        ax.bar(xs, ys, width, label=row["method"])
        ax.errorbar(xs[-1], ys[-1], yerr=[[ys[-1] - float(row["ci_low"])], [float(row["ci_high"]) - ys[-1]]],
                    color="k", capsize=3, linewidth=1)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [g.replace("+", "\n") for g in groups], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("win rate (ties count 1/2)")
    ax.set_title(title)
    ax.legend(ncol=len(table), fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _duration(hours: float) -> str:
    """1.5 h, or 2.3 min under an hour (GPU runs take a minute, CPU runs most of an hour)."""
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def plot_training_cost(cost: list[dict], ax=None):
    """PPO runs needed to serve every combination, per scenario (rows of evaluate.training_cost):
    soups (one run per side) vs one policy per combination; labels give the measured hours."""
    import numpy as np

    fig, ax = _axes(ax, figsize=(7, 3.8))
    xs = np.arange(len(cost))
    lines = [("soup", "Personalized Soups: one run per side", "-o", "tab:blue", -14),
             ("per_combination", "one policy per combination", "-s", "tab:orange", 6)]
    for key, label, style, colour, dy in lines:
        runs = [c[f"{key}_runs"] for c in cost]
        ax.plot(xs, runs, style, color=colour, label=label)
        for x, c in zip(xs, cost):
            ax.annotate(_duration(c[f"{key}_hours"]), (x, c[f"{key}_runs"]), textcoords="offset points",
                        xytext=(0, dy), ha="center", fontsize=8, color=colour)
    if all("prompted_morl_hours" in c for c in cost):
        ax.plot(xs, [1] * len(cost), "-^", color="tab:green", label="Prompted-MORL: one run, retrained per new side")
        for x, c in zip(xs, cost):
            ax.annotate(_duration(c["prompted_morl_hours"]), (x, 1), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8, color="tab:green")
    ax.set_xticks(xs, [f"{c['preferences']}\n{c['sides']} sides, {c['combinations']} combos" for c in cost], fontsize=8)
    ax.set_ylabel("PPO training runs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_recipe_sweep(rows: list[dict], figsize=(13, 3.2)):
    """PPO recipe sweep (scripts/sweep_recipe.py): held-out metrics against rollouts, one line per
    (side, setting): the annotators' win rate against the untrained model, the reward model's
    score, KL per answer and answer length. rows: dicts with side, setting, rollouts, eval/*."""
    import matplotlib.pyplot as plt

    panels = [("eval/judge_win_rate", "annotator win rate vs vanilla"), ("eval/score", "reward-model score"),
              ("eval/kl", "KL per answer (nats)"), ("eval/response_length", "answer length (tokens)")]
    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    sides = sorted({r["side"] for r in rows})
    settings = sorted({r["setting"] for r in rows})
    colors = {s: f"C{i}" for i, s in enumerate(sides)}
    styles = dict(zip(settings, ["-", "--", ":", "-."]))
    for ax, (key, title) in zip(axes, panels):
        for side in sides:
            for setting in settings:
                run = sorted((r for r in rows if r["side"] == side and r["setting"] == setting and key in r),
                             key=lambda r: r["rollouts"])
                if run:
                    ax.plot([0] + [r["rollouts"] for r in run],
                            [_start_value(key, run[0])] + [r[key] for r in run],
                            styles.get(setting, "-"), color=colors[side], marker="o", ms=3, label=f"{side} {setting}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("rollouts")
        ax.grid(alpha=0.3)
    axes[0].axhline(0.5, color="gray", lw=0.8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_overoptimisation(rows: list[dict], figsize=(10, 3.4)):
    """Reward over-optimisation (Gao et al. 2023) from a KL sweep (scripts/sweep_recipe.py --sweep kl): the
    reward model's held-out score (the proxy PPO maximises) and the annotators' (the judge it was
    trained to imitate) against the KL from the reference, one line per KL coefficient. Both start at
    the untrained model (KL 0). A proxy that keeps climbing while the judge flattens or falls is the
    reward model being over-optimised."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=figsize)
    panels = [("eval/score", "eval/ref_score", "reward-model score (proxy)"),
              ("eval/judge", "eval/ref_judge", "annotator score (held-out judge)")]
    for ax, (key, ref, title) in zip(axes, panels):
        for i, setting in enumerate(sorted({r["setting"] for r in rows})):
            run = sorted((r for r in rows if r["setting"] == setting and key in r), key=lambda r: r["rollouts"])
            if run:
                ax.plot([0.0] + [r["eval/kl"] for r in run], [run[0].get(ref, float("nan"))] + [r[key] for r in run],
                        marker="o", ms=3, color=f"C{i}", label=setting)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("KL from the reference (nats per answer)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="KL coefficient", title_fontsize=8)
    fig.tight_layout()
    return fig


def _start_value(key: str, first: dict) -> float:
    """The value at 0 rollouts (the untrained policy is the reference model)."""
    return {"eval/judge_win_rate": 0.5, "eval/score": first.get("eval/ref_score", float("nan")),
            "eval/kl": 0.0}.get(key, float("nan"))
