"""Evaluation: do soups serve each of the 8 combinations as well as training for it?

The paper's protocol (RLPHF, Jang et al. 2023, section 5), with our simulated annotators as judges:

    for every eval prompt x and combination c = (s1, s2, s3):
        each method answers x (with c's preference prompt where the method uses one)
        for every side s of c:  judge_s(method's answer, vanilla answer) -> win / tie / loss
    win rate of a method on c = mean over prompts and c's three sides of
                                1 (win), 1/2 (tie), 0 (loss)

Methods (`METHODS`): the vanilla model (the baseline everyone is compared with), preference
prompting, the RLHF baseline, the multitask SFT baseline, Prompted-MORL, and the Personalized
Soup of c's three adapters (exact soup, weight 1/3 each). The MORLAIF adapter is one fixed
scalarization (P1A+P2A+P3A), so it is reported beside the table, not as a method for every c.

    responses = generate_responses(model, tokenizer, adapters_dir, prompts)      # slow part (GPU)
    verdicts  = judge_responses(responses)                                       # seconds
    table     = win_rate_table(verdicts)                                         # + bootstrap CIs

`rlphf-lab evaluate` runs all three and writes CSV + markdown tables under data/evaluation/.

    methods      METHODS, METHOD_SPEC, BASELINE, available_methods, choose_methods, load_evaluation_model, generate_responses
    verdicts     judge_responses: win / tie / loss per side against the vanilla answer
    win_rates    win_rate, bootstrap_ci, paired_difference, win_rate_table, side_table
    mean_scores  mean_annotator_scores, mean_reward_scores (per side, and length)
    report       evaluation_tables (all of the above from the answers), report_markdown
    ai_judge     ai_judge_verdicts, agreement: the 135M model as judge on a sample
    cost         training_cost, run_seconds, measured_training_cost: runs and hours per number of sides

    from rlphf_lab import evaluate as E
    E.win_rate_table(E.judge_responses(rows))
"""
from ..feedback.pairs import TIE_MARGIN   # noqa: F401  (E.TIE_MARGIN: the tie margin judge_responses uses)
from ..tables import markdown_table, read_csv, write_csv   # noqa: F401  (E.read_csv, E.write_csv for callers)
from .ai_judge import agreement, ai_judge_verdicts
from .cost import COST_SCENARIOS, DEVICES, measured_training_cost, run_seconds, training_cost
from .mean_scores import mean_annotator_scores, mean_reward_scores
from .methods import (BASELINE, EXTRA_METHODS, METHOD_SPEC, METHODS, SIDE_ADAPTERS, available_methods, choose_methods,
                      generate_responses, load_evaluation_model)
from .report import REPORT_SECTIONS, evaluation_tables, report_markdown
from .verdicts import judge_responses, shipped_verdicts
from .win_rates import POINTS, bootstrap_ci, paired_difference, side_table, win_rate, win_rate_table

__all__ = ["METHODS", "BASELINE", "METHOD_SPEC", "SIDE_ADAPTERS", "EXTRA_METHODS", "available_methods", "choose_methods",
           "load_evaluation_model", "generate_responses", "judge_responses", "shipped_verdicts", "POINTS", "win_rate", "bootstrap_ci",
           "paired_difference", "win_rate_table", "side_table", "mean_annotator_scores", "mean_reward_scores",
           "evaluation_tables", "REPORT_SECTIONS", "report_markdown", "ai_judge_verdicts", "agreement",
           "COST_SCENARIOS", "training_cost", "DEVICES", "run_seconds", "measured_training_cost"]
