"""The evaluation's bookkeeping on hand-made answers: verdicts, win rates, bootstrap, cost."""
import pytest

from rlphf_lab import evaluate as E, soups
from rlphf_lab.feedback import annotators

SHORT = "Water boils at 100 degrees, when its vapour pressure equals the air pressure."
LONG = ("Water boils at 100 degrees Celsius at sea level because its vapour pressure then equals the air "
        "pressure; higher up, the air pressure is lower, so water boils at a lower temperature, which is "
        "why pasta takes longer to cook in the mountains and why pressure cookers cook faster.")


def rows(method_text: str, combination: str = "P1A+P2A+P3A", method: str = "soup"):
    return [{"prompt_id": "p1", "instruction": "Why does water boil?", "method": "vanilla", "combination": "",
             "response": LONG},
            {"prompt_id": "p1", "instruction": "Why does water boil?", "method": method,
             "combination": combination, "response": method_text}]


def test_verdicts_follow_the_annotators_one_side_at_a_time():
    verdicts = E.judge_responses(rows(SHORT))
    assert [v["side"] for v in verdicts] == ["P1A", "P2A", "P3A"]
    by_side = {v["side"]: v for v in verdicts}
    # the short answer is more concise than the long one: a win on P2A
    question = "Why does water boil?"          # the annotators read the instruction too
    assert annotators.score("P2A", SHORT, question) > annotators.score("P2A", LONG, question) + E.TIE_MARGIN
    assert by_side["P2A"]["verdict"] == "win"
    for v in verdicts:
        assert v["score_method"] == pytest.approx(annotators.score(v["side"], SHORT, question), abs=1e-4)
        assert v["order"] in ("method-first", "vanilla-first")


def test_same_answer_ties_and_combination_free_methods_are_judged_for_every_combination():
    verdicts = E.judge_responses(rows(LONG, combination="", method="rlhf"))
    assert len(verdicts) == 8 * 3
    assert {v["verdict"] for v in verdicts} == {"tie"}
    assert E.win_rate(verdicts) == 0.5


def test_win_rate_counts_ties_as_half():
    v = [{"prompt_id": "a", "verdict": "win"}, {"prompt_id": "a", "verdict": "tie"},
         {"prompt_id": "b", "verdict": "loss"}, {"prompt_id": "b", "verdict": "win"}]
    assert E.win_rate(v) == pytest.approx((1 + 0.5 + 0 + 1) / 4)


def test_bootstrap_interval_contains_the_estimate_and_collapses_without_variation():
    v = [{"prompt_id": f"p{i}", "verdict": "win" if i % 3 else "loss"} for i in range(30)]
    lo, hi = E.bootstrap_ci(v, n_boot=500)
    assert lo < E.win_rate(v) < hi
    same = [{"prompt_id": f"p{i}", "verdict": "win"} for i in range(10)]
    assert E.bootstrap_ci(same) == (1.0, 1.0)


def test_win_rate_table_has_every_combination_and_the_counts():
    verdicts = E.judge_responses(rows(SHORT)) + E.judge_responses(rows(LONG, combination="", method="rlhf"))
    table = {r["method"]: r for r in E.win_rate_table(verdicts, n_boot=50)}
    assert set(table) == {"soup", "rlhf"}
    assert table["rlhf"]["P1B+P2B+P3B"] == 0.5
    assert table["soup"]["wins"] + table["soup"]["ties"] + table["soup"]["losses"] == 3
    assert table["soup"]["P1B+P2B+P3B"] != table["soup"]["P1B+P2B+P3B"]     # NaN: no soup answer for it


def test_training_cost_soups_linear_per_combination_product():
    cost = E.training_cost(side_seconds=3600, pmorl_seconds=7200)
    assert [c["soup_runs"] for c in cost] == [2, 4, 6, 8]
    assert [c["per_combination_runs"] for c in cost] == [2, 4, 8, 16]
    assert cost[-1]["soup_hours"] == 8.0
    assert cost[2]["prompted_morl_hours"] == 2.0 and cost[3]["prompted_morl_hours"] == 4.0


def test_user_soup_weights_lean_towards_the_liked_sides():
    w = soups.user_soup_weights({"P1": -2.0, "P2": 3.0, "P3": 2.0})
    assert w["P1A"] > w["P1B"] and w["P2B"] > w["P2A"] and w["P3A"] > w["P3B"]
    assert all(abs(w[f"{d}A"] + w[f"{d}B"] - 1) < 1e-9 for d in ("P1", "P2", "P3"))
    with pytest.raises(ValueError, match="P4"):
        soups.user_soup_weights({"P4": 1.0})


def test_markdown_table_rounds_floats():
    md = E.markdown_table([{"method": "soup", "average": 0.61234}])
    assert md.splitlines()[2] == "| soup | 0.612 |"


def fake_adapter(root, name, **record):
    """root/name/adapter with an (empty) PEFT config and weights file, and a provenance record."""
    import json

    folder = root / name / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    if record:
        (root / name / "adapter.provenance.json").write_text(json.dumps(record))
    return folder


def test_available_methods_needs_every_soup_adapter(tmp_path):
    assert E.available_methods(tmp_path) == ["prompting"]
    for side in E.SIDE_ADAPTERS[:5]:
        fake_adapter(tmp_path, side)
    assert "soup" not in E.available_methods(tmp_path)
    (tmp_path / "P3B" / "adapter").mkdir(parents=True)
    (tmp_path / "P3B" / "adapter" / "adapter_config.json").write_text("{}")
    assert "soup" not in E.available_methods(tmp_path)           # config without weights: still being written
    (tmp_path / "P3B" / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    assert E.available_methods(tmp_path) == ["prompting", "soup"]


def test_loading_methods_without_their_adapters_says_what_to_run(tmp_path):
    import torch

    with pytest.raises(ValueError, match=r"\['rlhf'\].*make artifacts"):
        E.load_evaluation_model(torch.nn.Linear(2, 2), tmp_path, ["prompting", "rlhf"])


def test_a_method_that_ignores_the_user_averages_exactly_one_half():
    # Sides A and B of a dimension score the same answer with opposite signs, and every side is in
    # 4 of the 8 combinations: a win on "concise" is a loss on "informative". So any ordinary answer
    # that does not depend on the combination (RLHF, MORLAIF) gets 0.5 on average, whatever it says;
    # only the shared degeneracy penalty (empty or looping answers) breaks the symmetry.
    medium = ("Water boils when it is heated to 100 degrees Celsius. Then bubbles of steam form inside it. "
              "I hope this helps you, thanks for asking!")
    for text in (medium, LONG + " Honestly, I think you will find this fascinating!"):
        assert annotators.degeneracy_penalty(annotators.raw_signals(text)) == 0
        verdicts = E.judge_responses(rows(text, combination="", method="rlhf"))
        assert {"win", "loss"} <= {v["verdict"] for v in verdicts}
        assert E.win_rate(verdicts) == pytest.approx(0.5)
    looping = E.judge_responses(rows("no, no, no, no, no, no, no, no, no, no", combination="", method="rlhf"))
    assert E.win_rate(looping) < 0.5


def paired(points_a, points_b):
    v = []
    for i, (a, b) in enumerate(zip(points_a, points_b)):
        v += [{"prompt_id": f"p{i}", "method": "soup", "verdict": a}, {"prompt_id": f"p{i}", "method": "prompting", "verdict": b}]
    return v


def test_paired_difference_sees_a_clear_winner_and_a_tie():
    clear = E.paired_difference(paired(["win"] * 18 + ["tie"] * 2, ["loss"] * 15 + ["win"] * 5), "soup", "prompting")
    assert clear["difference"] == pytest.approx((18 + 1 - 5) / 20)
    assert clear["ci_low"] > 0 and clear["clear"] and clear["prompts"] == 20
    even = E.paired_difference(paired(["win", "loss"] * 10, ["loss", "win"] * 10), "soup", "prompting")
    assert even["difference"] == 0 and even["ci_low"] < 0 < even["ci_high"] and not even["clear"]
    with pytest.raises(ValueError, match="judge both"):
        E.paired_difference(paired(["win"], ["win"]), "soup", "multitask")


def test_run_seconds_reads_provenance_and_filters_by_device(tmp_path):
    for name, device, secs in (("P1A", "cpu", 2700.0), ("P3A", "cuda", 68.0), ("prompted-morl", "cuda:0", 69.0)):
        fake_adapter(tmp_path, name, device=device, wall_time_s=secs)
    names = ["P1A", "P3A", "prompted-morl", "P2B"]
    assert E.run_seconds(tmp_path, names) == {"P1A": 2700.0, "P3A": 68.0, "prompted-morl": 69.0}
    assert E.run_seconds(tmp_path, names, device="cuda") == {"P3A": 68.0, "prompted-morl": 69.0}
    assert E.run_seconds(tmp_path, names, device="cpu") == {"P1A": 2700.0}
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        E.run_seconds(tmp_path, names, device="gpu")


def test_measured_cost_compares_runs_from_the_machine_that_trained_prompted_morl(tmp_path):
    assert E.measured_training_cost(tmp_path)["device"] is None            # nothing trained: assumed times
    for name, device, secs in (("P1A", "cpu", 2700.0), ("P3A", "cuda", 60.0), ("P3B", "cuda", 80.0),
                               ("prompted-morl", "cuda", 70.0)):
        fake_adapter(tmp_path, name, device=device, wall_time_s=secs)
    m = E.measured_training_cost(tmp_path)
    assert m["device"] == "cuda" and m["side_seconds"] == 70.0 and m["pmorl_seconds"] == 70.0
    assert m["cost"] == E.training_cost(70.0, 70.0)


def test_mean_annotator_scores_count_each_answer_only_for_the_sides_of_its_combination():
    import torch

    rows = [{"prompt_id": "p1", "instruction": "q", "method": "vanilla", "combination": "", "response": LONG},
            {"prompt_id": "p1", "instruction": "q", "method": "soup", "combination": "P1A+P2A+P3A", "response": SHORT},
            {"prompt_id": "p1", "instruction": "q", "method": "soup", "combination": "P1B+P2B+P3B", "response": LONG}]
    ann = {r["method"]: r for r in E.mean_annotator_scores(rows)}
    assert ann["soup"]["P2A"] == pytest.approx(annotators.score("P2A", SHORT), abs=1e-6)    # only the P2A answer
    assert ann["soup"]["P2B"] == pytest.approx(annotators.score("P2B", LONG), abs=1e-6)
    assert ann["vanilla"]["P2A"] == pytest.approx(annotators.score("P2A", LONG), abs=1e-6)
    assert ann["soup"]["words"] == pytest.approx((len(SHORT.split()) + len(LONG.split())) / 2)

    def words_scorer(sides, instructions, responses):          # side k scores k * (number of words)
        return torch.tensor([[k * len(t.split()) for k in range(len(sides))] for t in responses], dtype=torch.float)

    rm = {r["method"]: r for r in E.mean_reward_scores(rows, words_scorer, batch_size=2)}
    k = list(E.SIDE_ADAPTERS)
    assert rm["soup"]["P2A"] == k.index("P2A") * len(SHORT.split())
    assert rm["soup"]["P3B"] == k.index("P3B") * len(LONG.split())
    assert rm["vanilla"]["P1B"] == k.index("P1B") * len(LONG.split())


def test_csv_tables_round_trip(tmp_path):
    rows = [{"method": "soup", "average": 0.533, "clear": False}, {"method": "rlhf", "average": 0.5, "clear": True}]
    back = E.read_csv(E.write_csv(tmp_path / "t.csv", rows))
    assert back == [{"method": "soup", "average": 0.533, "clear": "False"}, {"method": "rlhf", "average": 0.5, "clear": "True"}]


def test_evaluation_tables_builds_every_table_and_the_report_names_them():
    answers = rows(SHORT) + [{"prompt_id": "p1", "instruction": "Why does water boil?", "method": "prompting",
                              "combination": "P1A+P2A+P3A", "response": LONG}]
    summary = E.evaluation_tables(answers, n_boot=50)
    assert [r["method"] for r in summary["win_rates"]] == ["prompting", "soup"]
    assert [r["other"] for r in summary["soup_vs_others"]] == ["prompting"]
    assert summary["soup_vs_others"][0]["difference"] == pytest.approx(
        E.win_rate([v for v in summary["verdicts"] if v["method"] == "soup"]) - 0.5)     # prompting ties vanilla
    report = E.report_markdown({**summary, "ai_judge": {"n": 0}})
    for title in ("Win rates against the vanilla model", "Soup minus each other method", "Win rate per side",
                  "Mean annotator score", "AI judge"):
        assert title in report
    assert "reward-model" not in report                                     # only the sections it was given


def test_cost_plot_labels_runs_in_minutes_or_hours():
    from rlphf_lab.plots import plot_training_cost

    gpu = plot_training_cost(E.training_cost(side_seconds=68.0, pmorl_seconds=69.0))
    labels = [t.get_text() for t in gpu.axes[0].texts]
    assert "2.3 min" in labels and "9.1 min" in labels          # 2 and 8 soup runs of 68 s
    assert len(gpu.axes[0].lines) == 3                           # soups, per combination, Prompted-MORL
    cpu = plot_training_cost(E.training_cost(side_seconds=2750.0))
    assert "6.1 h" in [t.get_text() for t in cpu.axes[0].texts] and len(cpu.axes[0].lines) == 2


def test_choose_methods_names_unknown_ones_and_the_ones_without_adapters(tmp_path):
    methods, missing = E.choose_methods(["vanilla", "prompting", "P2A"], tmp_path)     # no adapters there
    assert methods == ["prompting"] and missing == ["P2A"]
    with pytest.raises(ValueError, match="Unknown methods \\['bogus'\\]; choose from vanilla"):
        E.choose_methods(["bogus"], tmp_path)


def test_the_dpo_soup_needs_the_six_dpo_adapters_and_mixes_them_only(tmp_path):
    from rlphf_lab.evaluate.methods import _needed_adapters

    from rlphf_lab.evaluate.methods import DPO_SIDE_ADAPTERS

    assert _needed_adapters(["dpo-soup", "P2A"]) == ["P2A", *DPO_SIDE_ADAPTERS]
    for side in E.SIDE_ADAPTERS:
        fake_adapter(tmp_path, f"dpo-{side}")
    assert E.available_methods(tmp_path, ["soup", "dpo-soup", "dpo-P2A"]) == ["dpo-soup", "dpo-P2A"]


def test_the_dpo_soup_selects_the_combinations_dpo_adapters(tmp_path):
    from tiny_models import tiny_llama

    from rlphf_lab import soups
    from rlphf_lab.evaluate.methods import _select

    names = [f"dpo-{s}" for s in E.SIDE_ADAPTERS] + ["P1A"]
    model = soups.load_adapters(tiny_llama(), soups.random_lora_adapters(tiny_llama(), names, tmp_path, r=8, seed=0))
    _select(model, "dpo-soup", "P1A+P2B+P3A")
    weights = soups.soup_weights(model)
    assert {n for n, w in weights.items() if w > 0} == {"dpo-P1A", "dpo-P2B", "dpo-P3A"}
    assert weights["dpo-P1A"] == pytest.approx(1 / 3) and weights["P1A"] == 0


def test_the_dpo_soup_gets_its_own_paired_differences():
    answers = rows(SHORT) + [dict(r, method="dpo-soup", response=LONG) for r in rows(SHORT) if r["method"] == "soup"]
    summary = E.evaluation_tables(answers, n_boot=50)
    assert [r["other"] for r in summary["dpo_soup_vs_others"]] == ["soup"]
    assert "DPO soup minus each other method" in E.report_markdown(summary)
