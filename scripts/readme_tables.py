"""The README's tables, printed from the result files (nothing typed in):

    .venv/bin/python scripts/readme_tables.py            # paste the output into README.md, "Evaluation"
    .venv/bin/python scripts/readme_tables.py --rewards  # "Reward models": accuracy and hack ranking per side
    .venv/bin/python scripts/readme_tables.py --notebooks   # "Notebooks": each notebook's time at the class size
    .venv/bin/python scripts/readme_tables.py --soups    # "Speed": bench_soup / bench_remix / bench_output_mix

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


def soup_tables() -> None:
    """The soup benchmarks' tables from their result files (benchmarks/results/bench_soup_threads2.json,
    bench_remix.json, bench_output_mix.json), with the machine each ran on."""
    import json

    res = REPO / "benchmarks" / "results"
    soup = json.loads((res / "bench_soup_threads2.json").read_text())
    fold, setup = soup["fold"], soup["setup"]
    ok = lambda met: "yes" if met else "NO"   # noqa: E731
    print(f"`bench_soup.py --threads 2`: {setup['dtype']}, {setup['torch_threads']} threads; "
          f"uptime before: {setup['uptime_before']}\n")
    speed = fold["tokens_per_s"]
    med = lambda xs: sorted(xs)[len(xs) // 2]   # noqa: E731
    print(table(["measure", "result", "target", "met"], [
        ["one weight change, 6 adapters (live soup)", f"{soup['weight_change_ms']['median']:.2f} ms", "<= 5 ms",
         ok(soup["weight_change_ms"]["median"] <= 5)],
        ["first streamed token after a weight change", f"{soup['first_token_ms']['median']:.0f} ms "
         f"(base model alone {soup['first_token_base_model_ms']['median']:.0f} ms)", "<= 300 ms",
         ok(soup["first_token_ms"]["median"] <= 300)],
        ["re-fold after a slider move (one slider dragged)", f"{fold['refold_ms']['median']:.1f} ms "
         f"(p95 {fold['refold_ms']['p95']:.1f})", "<= 20 ms", ok(fold["refold_ms"]["median"] <= 20)],
        ["re-fold, a drag's first move", f"{fold['refold_drag_first_move_ms']['median']:.1f} ms", "", ""],
        ["re-fold, every slider at once (a new combination)", f"{fold['refold_every_slider_ms']['median']:.1f} ms",
         "", ""],
        ["decoding, folded soup / base model (median of per-round ratios)",
         f"{fold['folded_over_base']['median']:.3f} ({med(speed['folded']):.1f} / {med(speed['base']):.1f} tokens/s; "
         f"live soup {fold['live_over_base']['median']:.3f})", ">= 0.95", ok(fold["folded_over_base"]["median"] >= 0.95)],
        ["memory the fold keeps", f"{fold['memory_mb']:.0f} MB", "", ""],
        [f"{soup['memory_flat']['changes']} weight changes: RSS", f"{soup['memory_flat']['before']['rss_mb']:.0f} -> "
         f"{soup['memory_flat']['after']['rss_mb']:.0f} MB", "flat", ok(soup["memory_flat"]["flat"])],
    ]))
    remix = json.loads((res / "bench_remix.json").read_text())
    print(f"\n`bench_remix.py --threads 2`: {remix['dtype']}, {remix['threads']} threads, "
          f"{remix['prefix_tokens']}-token prefix; uptime before: {remix['uptime_before']}\n")
    print(table(["measure", "median ms", "max ms", "target"], [
        [name, f"{v['median']:.0f}", f"{v['max']:.0f}",
         "<= 150" if name.startswith(("move", "mid")) else ("(the least a move can cost)" if name.startswith("floor") else "")]
        for name, v in remix["ms"].items()]))
    mix = json.loads((res / "bench_output_mix.json").read_text())
    print(f"\n`bench_output_mix.py --threads 2`: {mix['setup']['dtype']}, {mix['setup']['new_tokens']} new tokens, "
          f"medians of {mix['setup']['repeats']}; uptime before: {mix['setup']['uptime_before']}\n")
    print(table(["adapters k", "output mix (tok/s)", "weight soup (tok/s)", "base model (tok/s)", "output mix / soup"], [
        [f"{r['adapters']}", f"{r['output_mix_tokens_per_s']:.1f}", f"{r['weight_soup_tokens_per_s']:.1f}",
         f"{r['base_tokens_per_s']:.1f}", f"{r['output_mix_tokens_per_s'] / r['weight_soup_tokens_per_s']:.2f}"]
        for r in mix["rows"]]))


def main() -> None:
    if "--soups" in sys.argv[1:]:
        return soup_tables()
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
