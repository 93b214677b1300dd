"""scripts/sweep_recipe.py's sweeps and their figures: the KL sweep's settings really differ in their KL
coefficient only, and the over-optimisation figure draws the proxy and the judge from the untrained model on."""
import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from rlphf_lab.plots import plot_overoptimisation, plot_recipe_sweep  # noqa: E402

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "sweep_recipe.py"
spec = importlib.util.spec_from_file_location("sweep_recipe", SCRIPT)
sweep_recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep_recipe)


def test_the_kl_sweep_varies_only_the_kl_coefficient_and_keeps_it_fixed():
    shared, settings, sides, runs, stem, iterations, every = sweep_recipe.SWEEPS["kl"]
    assert sides == ["P2A"] and stem == "kl" and runs != sweep_recipe.RUNS
    assert {tuple(v) for v in settings.values()} == {("--init-kl-coef", "0"), ("--init-kl-coef", "0.05"),
                                                     ("--init-kl-coef", "0.5")}
    assert "--init-kl-coef" not in shared
    horizon = float(shared[shared.index("--kl-horizon") + 1])
    # the adaptive step is proportional to samples / horizon: a run's iterations of 8 move beta by < 1e-6
    assert iterations * 8 / horizon < 1e-6


def rows():
    out = []
    for setting, slope in (("beta0", 3.0), ("beta0.5", 0.5)):
        for it in (4, 8, 12):
            kl = slope * it
            out.append({"side": "P2A", "setting": setting, "iteration": it, "rollouts": 8 * it, "eval/kl": kl,
                        "eval/score": 0.1 * kl, "eval/ref_score": -0.5, "eval/judge": 1.0 - 0.01 * kl ** 2,
                        "eval/ref_judge": 0.9, "eval/judge_win_rate": 0.6, "eval/response_length": 40.0})
    return out


def test_overoptimisation_figure_starts_at_the_untrained_model_for_every_coefficient():
    fig = plot_overoptimisation(rows())
    proxy, judge = fig.axes[:2]
    assert [line.get_label() for line in proxy.lines] == ["beta0", "beta0.5"]
    for line in proxy.lines + judge.lines:
        assert line.get_xdata()[0] == 0.0 and len(line.get_xdata()) == 4
    assert proxy.lines[0].get_ydata()[0] == -0.5 and judge.lines[0].get_ydata()[0] == 0.9
    assert max(proxy.lines[0].get_xdata()) == 36.0
    assert len(plot_recipe_sweep(rows()).axes) == 4


def test_last_evaluations_keep_each_settings_last_row_and_its_untrained_start():
    from rlphf_lab.rl.heldout import last_evaluations

    out = last_evaluations([{**r, "eval/eos_fraction": 0.5} for r in rows()[::-1]])
    assert [(r["setting"], r["rollouts"]) for r in out] == [("beta0", 96), ("beta0.5", 96)]
    assert out[0]["KL (nats / answer)"] == 36.0 and out[0]["reward model: untrained -> trained"] == "-0.50 -> +3.60"
    assert out[1]["annotators: untrained -> trained"] == "+0.90 -> +0.64"
