"""The README's tables, printed from the result files (nothing typed in):

    .venv/bin/python scripts/readme_tables.py            # paste the output into README.md, "Evaluation"
    .venv/bin/python scripts/readme_tables.py --rewards  # "Reward models": accuracy and hack ranking per side
    .venv/bin/python scripts/readme_tables.py --notebooks   # "Notebooks": each notebook's time at the class size

Win rates per combination with the average and its 95% CI, the soup's and the DPO soup's paired
differences, and the win rate per side with the mean length.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rlphf_lab.preferences import SIDES, combinations  # noqa: E402
from rlphf_lab.tables import read_csv  # noqa: E402

RESULTS = REPO / "data" / "evaluation"
REWARDS = REPO / "data" / "reward_models"
TARGETS = {"P2A": 0.9, "P2B": 0.9}          # the course's held-out accuracy targets (0.80 for the other sides)


def table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def reward_tables() -> None:
    """Held-out accuracy per side against its target, and how many hack-suite answers each side's reward
    model scores at or above the normal answer (data/reward_models/hack_ranking.csv)."""
    acc = {r["side"]: r for r in read_csv(REWARDS / "accuracy.csv") if r["backend"] == "features"}
    hacks = read_csv(REWARDS / "hack_ranking.csv") if (REWARDS / "hack_ranking.csv").exists() else []
    sides = [s for s in (*SIDES, "general") if s in acc]
    print(table(["side", *sides],
                [["held-out accuracy", *(f"{acc[s]['eval_accuracy']:.3f}" for s in sides)],
                 ["course target", *(f"{TARGETS.get(s, 0.8):.2f}" for s in sides)],
                 ["held-out pairs", *(f"{acc[s]['n_eval']:.0f}" for s in sides)],
                 ["hacks ranked at or above the normal answer",
                  *(f"{sum(h['misranked'] for h in hacks if h['side'] == s):.0f} of "
                    f"{sum(h['comparisons'] for h in hacks if h['side'] == s):.0f}" for s in sides)]]))
    missed = [f"{h['side']} {h['kind']} ({h['misranked']:.0f})" for h in hacks if h["misranked"]]
    print()
    print("misranked hacks: " + (", ".join(missed) if missed else "none"))


def notebook_table(size: str = "class") -> None:
    """Each notebook's measured wall time at `size` (benchmarks/results/notebook_times.csv, build_course.py --times)."""
    from rlphf_lab.course import measured_times

    times = measured_times()
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9]*.ipynb"))
    rows = []
    for name in notebooks:
        r = times.get((name, size))
        rows.append([name, "not measured yet"] if r is None else
                    [name, f"{r['seconds'] / 60:.1f} min" + (" (FAILED)" if r["failed"] else ""),
                     "yes" if r["seconds"] <= 15 * 60 and not r["failed"] else "NO",
                     f"{r['date']}, {r['cpu']}, {r['cores']:.0f} cores, load {r['load_before']:.2f} before"])
    print(table([f"notebook", f"wall time at the {size} size", "at most 15 min", "measured"],
                [r + [""] * (4 - len(r)) for r in rows]))


def main() -> None:
    if "--rewards" in sys.argv[1:]:
        return reward_tables()
    if "--notebooks" in sys.argv[1:]:
        return notebook_table()
    combos = combinations()
    wins = read_csv(RESULTS / "win_rates.csv")
    soups = {"soup", "dpo-soup"}
    print(table(["method", *combos, "average [95% CI]"],
                [[f"**{r['method']}**" if r["method"] in soups else r["method"], *(f"{r[c]:.2f}" for c in combos),
                  f"{'**' if r['method'] in soups else ''}{r['average']:.3f}{'**' if r['method'] in soups else ''} "
                  f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"] for r in wins]))
    for name in ("soup_vs_others", "dpo_soup_vs_others"):
        rows = read_csv(RESULTS / f"{name}.csv") if (RESULTS / f"{name}.csv").exists() else []
        if rows:
            print()
            print(table([f"{rows[0]['method']} minus", "difference", "95% CI", "clear?"],
                        [[r["other"], f"{r['difference']:+.3f}", f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                          "yes" if r["clear"] in (True, "True") else "no"] for r in rows]))
    words = {r["method"]: r["words"] for r in read_csv(RESULTS / "mean_scores.csv")}
    print()
    print(table(["method", *SIDES, "mean words"],
                [[r["method"], *(f"{r[s]:.2f}" for s in SIDES), f"{words.get(r['method'], float('nan')):.0f}"]
                 for r in read_csv(RESULTS / "win_rates_by_side.csv")]
                + [["vanilla", *[""] * len(SIDES), f"{words['vanilla']:.0f}"]]))


if __name__ == "__main__":
    main()
