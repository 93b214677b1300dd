"""The README's evaluation tables, printed from data/evaluation/*.csv (nothing typed in):

    .venv/bin/python scripts/readme_tables.py      # paste the output into README.md, "Evaluation"

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


def table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
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
