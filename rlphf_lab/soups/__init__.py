"""Personalized Soups: mix LoRA policies, one per preference side, at inference time.

Each PPO policy is the base model plus a LoRA delta on some weight matrices W (q_proj, v_proj):

    W_i = W + s_i B_i A_i          A_i: (r, in), B_i: (out, r), s_i = alpha_i / r_i

The exact soup of k adapters with weights w is the weighted sum of their deltas:

    W_soup = W + sum_i w_i s_i B_i A_i

PEFT computes exactly this when all k adapters are active at once, so a soup needs no new
weights: activate the adapters and set each one's scale to w_i * s_i.

    loading  load_adapters (checked, all-or-nothing), load_soup (shipped or random stand-ins), adapter checks
    mix      the live exact mix: set_soup_weights, soup_weights, use_adapter, model_lock
    fold     the same soup folded into W (base-model decoding speed): fold_soup_weights, unfold_soup, folded
    weights  preferences -> weights: combination_weights, dimension_weights_to_sides, nearest_combination
    delta    delta maths: exact_delta, ab_average_delta (the reference code's cross terms), relative_gap
    merges   merges that make an adapter (average_ab_merge, peft_weighted_merge) and compare_merges
    fronts   score_soup_answers, sweep_weights, pareto_front (mix="weights" or "outputs")
    outputs  mixing in outputs (MOD): generate_mixed_outputs, stream_mixed_outputs, mixed_next_token_logprobs
    learned  did each loaded adapter learn its side: own_side_win_rates, weak_adapters (the widget warns)
    remix    re-mix mid-answer: continue_answer goes on from the tokens so far under new weights (RemixAnswer)

    from rlphf_lab import soups
    model, tok, source = soups.load_soup()
    soups.set_soup_weights(model, soups.combination_weights("P1A+P2B+P3A"))    # the paper's soup, exact
    generate(model, tok, ["Why is the sky blue?"])

The reference code averaged A and B separately instead, which is not the same thing
(`average_ab_merge`, `ab_average_delta` show the cross terms B_i A_j), and PEFT's
`add_weighted_adapter` offers more merges (`peft_weighted_merge`).
"""
from .delta import (ab_average_delta, ab_average_factors, adapter_delta, exact_delta, factor_similarity, lora_factors,
                    relative_gap)
from .fold import FoldState, fold_memory, fold_soup_weights, fold_state, folded, is_folded, unfold_soup
from .fronts import group_means, pareto_front, pareto_optimal, score_answers, score_soup_answers, sweep_weights
from .fronts import MIX_CHOICES, check_mix
from .learned import WEAK_WIN_RATE, own_side_win_rates, weak_adapters, weak_adapters_html
from .loading import (ADAPTER_CONFIG, ADAPTER_WEIGHTS, BASELINE_ADAPTERS, SHIPPED_DIR, check_compatible,
                      expected_lora_shapes, load_adapters, load_soup, my_adapter_dirs, random_lora_adapters, read_adapter_config,
                      read_adapter_weights, restore_hint, shipped_adapter_dirs)
from .merges import (DENSITY_METHODS, MERGE_METHODS, average_ab_merge, compare_merges, logit_difference,
                     peft_weighted_merge)
from .outputs import (adapter_next_token_logprobs, generate_mixed_outputs, mix_logprobs, mixed_next_token_logprobs,
                      positive_weights, stream_mixed_outputs)
from .remix import RemixAnswer, Segment, continue_answer
from .mix import (SoupState, adapter_names, check_weights, model_lock, own_scales, set_soup_weights, soup_state,
                  soup_weights, use_adapter)
from .weights import as_weights, combination_weights, dimension_weights_to_sides, nearest_combination, user_soup_weights

__all__ = ["load_adapters", "load_soup", "my_adapter_dirs", "random_lora_adapters", "shipped_adapter_dirs", "read_adapter_config",
           "read_adapter_weights", "expected_lora_shapes", "check_compatible", "restore_hint", "ADAPTER_CONFIG",
           "ADAPTER_WEIGHTS", "SHIPPED_DIR", "BASELINE_ADAPTERS",
           "set_soup_weights", "soup_weights", "use_adapter", "check_weights", "adapter_names", "model_lock",
           "own_scales", "soup_state", "SoupState",
           "fold_soup_weights", "unfold_soup", "is_folded", "folded", "fold_memory", "fold_state", "FoldState",
           "combination_weights", "dimension_weights_to_sides", "nearest_combination", "as_weights", "user_soup_weights",
           "lora_factors", "exact_delta", "ab_average_factors", "ab_average_delta", "adapter_delta", "relative_gap",
           "factor_similarity",
           "average_ab_merge", "peft_weighted_merge", "compare_merges", "logit_difference", "DENSITY_METHODS",
           "MERGE_METHODS",
           "score_soup_answers", "sweep_weights", "group_means", "pareto_optimal", "pareto_front", "score_answers",
           "MIX_CHOICES", "check_mix", "generate_mixed_outputs", "stream_mixed_outputs", "mixed_next_token_logprobs",
           "adapter_next_token_logprobs", "mix_logprobs", "positive_weights",
           "RemixAnswer", "Segment", "continue_answer",
           "own_side_win_rates", "weak_adapters", "weak_adapters_html", "WEAK_WIN_RATE"]
