"""Pair labelling from a candidate pool, the rater population, and shipped-set round trips."""
import numpy as np
import pytest

from rlphf_lab.data import load_pairs, read_jsonl, write_pairs
from rlphf_lab.feedback import annotators as A
from rlphf_lab.feedback import pairs as P
from rlphf_lab.feedback import raters as R
from rlphf_lab.preferences import opposite

TEXTS = {
    "none": "Rain forms when water vapour in clouds condenses into droplets that grow heavy and fall.",
    "P1A": "Rain is water that falls from clouds. Clouds get full of tiny drops. Then the drops fall down.",
    "P1B": ("Precipitation results from heterogeneous nucleation on hygroscopic aerosols, followed by "
            "collision-coalescence and the Bergeron-Findeisen ice-crystal mechanism in mixed-phase clouds."),
    "P2A": "Clouds drop water.",
    "P2B": ("Rain begins with evaporation from oceans, lakes and plants. Rising air cools, so its vapour condenses "
            "on dust and salt particles into cloud droplets. Droplets collide and merge; in cold clouds ice crystals "
            "grow at the expense of droplets. Once drops are heavy enough to overcome updrafts, they fall as rain, "
            "snow or hail, depending on the temperature of the air below the cloud."),
    "P3A": "Hey friend! Great question, haha. Rain is basically clouds getting too full and happily sharing their water!",
    "P3B": "Ugh, seriously? Obviously clouds get heavy and water falls. Just google it next time.",
}


def pool(n_prompts=6, split="train"):
    return [{"id": f"p{i:04d}-{s}", "prompt_id": f"p{i:04d}", "split": split, "category": "science",
             "instruction": f"How do clouds make rain? ({i})", "style": s, "response": t}
            for i in range(n_prompts) for s, t in TEXTS.items()]


FIELDS = {"pair_id", "prompt_id", "split", "instruction", "preference", "rater", "label", "chosen", "rejected",
          "chosen_id", "rejected_id", "score_chosen", "score_rejected"}


@pytest.mark.parametrize("side", A.SIDES)
def test_pairs_include_the_opposite_style_pair_and_follow_the_annotator(side):
    pairs = P.make_preference_pairs(pool(), side, pairs_per_prompt=3, seed=0, temperature=0.0)
    assert pairs and all(set(p) == FIELDS for p in pairs)
    assert all(p["preference"] == side and p["rater"] == "annotator" for p in pairs)
    # without noise the chosen response always has the higher score
    assert all(p["score_chosen"] >= p["score_rejected"] + 0.1 for p in pairs)
    own = {side, opposite(side)}
    for prompt_id in {p["prompt_id"] for p in pairs}:
        styles = [{p["chosen_id"][-3:], p["rejected_id"][-3:]} for p in pairs if p["prompt_id"] == prompt_id]
        assert own in styles                      # the pair that differs along the side's own dimension
        # ... and there the side's own style wins on these clear-cut texts
        mine = [p for p in pairs if p["prompt_id"] == prompt_id and {p["chosen_id"][-3:], p["rejected_id"][-3:]} == own]
        assert mine[0]["chosen_id"].endswith(side)


def test_pairs_are_deterministic_and_differ_by_seed():
    a = P.make_preference_pairs(pool(), "P2B", pairs_per_prompt=5, seed=1, temperature=0.3)
    b = P.make_preference_pairs(pool(), "P2B", pairs_per_prompt=5, seed=1, temperature=0.3)
    c = P.make_preference_pairs(pool(), "P2B", pairs_per_prompt=5, seed=2, temperature=0.3)
    assert a == b
    assert [p["pair_id"] + p["chosen_id"] for p in a] != [p["pair_id"] + p["chosen_id"] for p in c]


def test_ties_are_dropped_but_counted():
    cands = pool(4)
    for c in cands:                               # every candidate the same text: all ties
        c["response"] = TEXTS["none"]
    assert P.make_preference_pairs(cands, "P1A", pairs_per_prompt=3, seed=0) == []
    kept = P.make_preference_pairs(cands, "P1A", pairs_per_prompt=3, seed=0, keep_ties=True)
    summary = P.label_summary(kept)["P1A"]
    assert summary["ties"] == 12 and summary["pairs"] == 0 and summary["tie_rate"] == 1.0


def test_label_summary_counts_noise_flips():
    pairs = P.make_preference_pairs(pool(40), "P3A", pairs_per_prompt=21, seed=0, temperature=5.0)
    summary = P.label_summary(pairs)["P3A"]
    assert 0.15 < summary["flipped"] < 0.5        # T=5 on unit-scale scores: many flips
    assert 0.4 < summary["frac_A"] < 0.6          # shown order is random


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="21 pairs"):
        P.make_preference_pairs(pool(), "P1A", pairs_per_prompt=30)
    with pytest.raises(ValueError, match="P3C"):
        P.make_preference_pairs(pool(), "P3C")


def test_population_spread_follows_disagreement():
    low = R.true_weights(R.make_population(400, "low", seed=0))
    high = R.true_weights(R.make_population(400, "high", seed=0))
    assert np.allclose(low.mean(0), R.MEAN_PREFERENCE, atol=0.05)
    assert np.allclose(low.std(0), 0.25, rtol=0.15) and np.allclose(high.std(0), 1.5, rtol=0.15)
    # high disagreement flips signs: some raters prefer expert answers, some simple ones
    assert (high[:, 0] > 0).mean() > 0.2 and (low[:, 0] > 0).mean() < 0.05
    with pytest.raises(ValueError, match="disagreement"):
        R.make_population(3, "medium")


def test_rater_pairs_follow_each_raters_weights():
    cands = pool(30)
    expert = R.Rater("rater-000", (3.0, 0.0, 0.0), 0.05)
    simple = R.Rater("rater-001", (-3.0, 0.0, 0.0), 0.05)
    pairs = R.make_rater_pairs(cands, [expert, simple], pairs_per_rater=200, seed=0)
    assert {p["rater"] for p in pairs} == {"rater-000", "rater-001"}
    scores = P.score_candidates(cands)
    for rater, sign in [("rater-000", 1), ("rater-001", -1)]:
        mine = [p for p in pairs if p["rater"] == rater]
        d = [sign * (scores[p["chosen_id"]]["dims"]["P1"] - scores[p["rejected_id"]]["dims"]["P1"]) for p in mine]
        clear = [x for x in d if abs(x) > 0.2]
        assert np.mean([x > 0 for x in clear]) > 0.95


def test_rater_choices_match_their_bradley_terry_probability():
    cands = pool(10)
    rater = R.make_population(1, 0.0, seed=0, temperature=4.0)[0]       # noisy: P(win) well inside (0, 1)
    pairs = R.make_rater_pairs(cands, [rater], pairs_per_rater=4000, seed=3)
    scores = P.score_candidates(cands)
    # every prompt of the pool holds the same texts: pool all P3A-vs-P3B pairs, whichever prompt;
    # the empirical win rate must match sigmoid((u(a) - u(b)) / T)
    a, b = "p0000-P3A", "p0000-P3B"
    hits = [p for p in pairs if {p["chosen_id"][-3:], p["rejected_id"][-3:]} == {"P3A", "P3B"}]
    assert len(hits) > 100
    p_a = R.rater_prob(rater, scores[a]["dims"], scores[b]["dims"], scores[a]["penalty"], scores[b]["penalty"])
    won = np.mean([p["chosen_id"].endswith("P3A") for p in hits])
    assert 0.6 < p_a < 0.95
    assert abs(won - p_a) < 4 * np.sqrt(p_a * (1 - p_a) / len(hits)) + 0.01


def test_write_and_load_pairs_round_trip_without_texts(tmp_path):
    cands = pool(3)
    pairs = P.make_preference_pairs(cands, "P2A", pairs_per_prompt=4, seed=0)
    cand_file = tmp_path / "candidates.jsonl"
    from rlphf_lab.data import write_jsonl

    write_jsonl(cand_file, cands)
    path = write_pairs(tmp_path / "pairs.jsonl", pairs)
    on_disk = read_jsonl(path)
    assert all("chosen" not in p and "instruction" not in p for p in on_disk)     # compact: ids only
    assert load_pairs(path, candidates=cand_file) == pairs
    with pytest.raises(FileNotFoundError, match="label-pairs"):
        load_pairs("no_such_set")
