"""The DPO side adapters against the PPO ones, from the shipped files only (nothing is typed in):

    .venv/bin/python scripts/dpo_report.py          # writes data/evaluation/dpo_sides.md and prints it

First the recipe runs kept in data/sweeps/dpo_recipe/<run>/ (the provenance, metrics and evaluation
tables of each P2A run that chose the recipe), then the dev-prompt comparisons of
data/sweeps/dpo_recipe/dev_eval.csv (scripts/dpo_dev_eval.py), then the shipped adapters.

Per side: the DPO adapter's training cost and held-out pair accuracy (data/adapters/dpo-<side>/
adapter.provenance.json), its own-side win rate against vanilla and share of answers under 8 words
(data/evaluation/win_rates_by_side.csv, responses.jsonl), and the same for the PPO adapter of the side.
A side whose DPO adapter is not trained or not evaluated yet says so.
"""
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rlphf_lab.data import read_jsonl  # noqa: E402
from rlphf_lab.preferences import SIDES, get_preference  # noqa: E402
from rlphf_lab.tables import markdown_table, read_csv  # noqa: E402

ADAPTERS, EVALUATION = REPO / "data" / "adapters", REPO / "data" / "evaluation"
RECIPE = REPO / "data" / "sweeps" / "dpo_recipe"
SHORT_WORDS = 8


def provenance(name: str) -> dict:
    file = ADAPTERS / name / "adapter.provenance.json"
    return json.loads(file.read_text()) if file.exists() else {}


def main() -> None:
    by_side = {r["method"]: r for r in read_csv(EVALUATION / "win_rates_by_side.csv")} \
        if (EVALUATION / "win_rates_by_side.csv").exists() else {}
    answers: dict[str, list[str]] = {}
    if (EVALUATION / "responses.jsonl").exists():
        for r in read_jsonl(EVALUATION / "responses.jsonl"):
            answers.setdefault(r["method"], []).append(r["response"])

    def short(method: str) -> str:
        texts = answers.get(method)
        return f"{sum(len(t.split()) < SHORT_WORDS for t in texts) / len(texts):.1%}" if texts else "not evaluated"

    def win(method: str, side: str) -> str:
        return f"{by_side[method][side]:.2f}" if method in by_side else "not evaluated"

    rows = []
    for side in SIDES:
        rec, ppo = provenance(f"dpo-{side}"), provenance(side)
        metrics, cfg = rec.get("final_metrics", {}), rec.get("config", {})
        rows.append({
            "side": f"{side} ({get_preference(side).name})",
            "DPO pairs x epochs": f"{metrics['pairs']} x {cfg.get('epochs', 1):g}" if rec else "not trained",
            "pairs above base": ("yes" if cfg.get("above_base") else "no") if rec else "",
            "DPO training time": f"{rec['wall_time_s'] / 60:.1f} min ({rec.get('machine', '?')}, {rec.get('device', '?')})" if rec else "",
            "with model load and evals": f"{metrics['total_time_s'] / 60:.1f} min" if "total_time_s" in metrics else "",
            "held-out pair accuracy": f"{metrics['eval_accuracy']:.2f}" if rec else "",
            "DPO own-side win rate": win(f"dpo-{side}", side),
            f"DPO answers < {SHORT_WORDS} words": short(f"dpo-{side}"),
            "PPO own-side win rate": win(side, side),
            "PPO wall time": f"{ppo['wall_time_s'] / 60:.1f} min ({ppo.get('machine', '?')})" if ppo else "",
        })
    recipe = []
    for run in sorted(p for p in RECIPE.glob("*") if p.is_dir()):
        rec = json.loads((run / "adapter.provenance.json").read_text())
        cfg, metrics = rec["config"], rec["final_metrics"]
        side = metrics["side"]
        wins = {r["method"]: r for r in read_csv(run / "win_rates_by_side.csv")}
        words = {r["method"]: r for r in read_csv(run / "mean_scores.csv")}
        recipe.append({"run": run.name, "learning rate": f"{cfg['learning_rate']:g}",
                       "hack share": "natural" if cfg.get("hack_share") is None else f"{cfg['hack_share']:g}",
                       "training time": f"{rec['wall_time_s'] / 60:.1f} min",
                       "held-out accuracy / margin": f"{metrics['eval_accuracy']:.2f} / {metrics['eval_margin']:.2f}",
                       "own-side win rate": f"{wins[f'dpo-{side}'][side]:.2f}",
                       "mean words (vanilla)": f"{words[f'dpo-{side}']['words']:.0f} ({words['vanilla']['words']:.0f})"})
    if recipe:
        text_recipe = ("How the DPO recipe was chosen (P2A, one run each, data/sweeps/dpo_recipe/)\n\n"
                       + markdown_table(recipe) + "\n\n")
    else:
        text_recipe = ""
    dev_file = RECIPE / "dev_eval.csv"
    if dev_file.exists():
        dev = [{"run": r["run"], "side": r["side"], "above base": r["above_base"],
                "trained on dev pairs": r["trained_on_dev"],      # recorded: runs/ is not in git
                "pairs x steps": f"{int(r['pairs'])} x {int(r['steps'])}",
                "training time": f"{float(r['train_time_s']) / 60:.1f} min",
                "dev own-side win rate": f"{float(r['win_rate']):.2f}",
                "wins / ties / losses": f"{int(r['wins'])} / {int(r['ties'])} / {int(r['losses'])}",
                "mean words (vanilla)": f"{float(r['words']):.0f} ({float(r['vanilla_words']):.0f})",
                f"< {SHORT_WORDS} words": f"{float(r['short_fraction']):.1%}"} for r in read_csv(dev_file)]
        text_recipe += ("Pairs above the base model's answer (`train-dpo --above-base`), compared on the 33 dev prompts "
                        "(`scripts/dpo_dev_eval.py`, 2 answers per prompt; never the eval prompts). The shipped-* rows are the "
                        "adapters shipped before --above-base became the recipe (their pairs included the dev prompts' "
                        "pairs)\n\n"
                        + markdown_table(dev) + "\n\n")
    text = text_recipe + ("DPO side adapters against the PPO ones (`scripts/dpo_report.py`, from the shipped provenance "
            "and evaluation files)\n\n" + markdown_table(rows) + "\n")
    (EVALUATION / "dpo_sides.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
