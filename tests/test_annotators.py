"""The simulated annotators: directions on hand-written texts, tie margin, Bradley-Terry noise rate."""
import numpy as np
import pytest

from rlphf_lab.feedback import annotators as A

CHILD = ("The sun is a big ball of fire. It is very hot. It gives us light and keeps us warm. "
         "Plants need the sun to grow. We see it in the day.")
JARGON = ("Stellar nucleosynthesis proceeds predominantly via the proton-proton chain, wherein quantum "
          "tunnelling circumvents the electrostatic Coulomb barrier, whereas heavier stars predominantly "
          "utilise the carbon-nitrogen-oxygen catalytic cycle, exhibiting pronounced temperature dependence.")
SHORT = "Plants make food from sunlight."
LONG = ("Photosynthesis is the process plants, algae and some bacteria use to turn light into chemical energy. "
        "Chlorophyll in the chloroplasts absorbs mostly red and blue light. The energy splits water molecules, "
        "releasing oxygen, and drives the Calvin cycle, which fixes carbon dioxide from the air into sugars such "
        "as glucose. Those sugars feed the plant's growth and, through food chains, almost every animal on Earth. "
        "The oxygen released over billions of years changed the atmosphere and made complex life possible.")
REPETITIVE = " ".join(["Plants make food."] * 40)
FRIENDLY = ("Hey friend! Great question, haha. Honestly, it's pretty awesome: plants basically cook their own "
            "lunch with sunlight. I love that! Hope this helps, and good luck with your project!")
RUDE = ("Ugh, seriously? Obviously plants make food from sunlight. Just google it next time, "
        "I can't be bothered explaining something this boring and stupid.")


def test_expertise_direction():
    assert A.dimension_score("P1", JARGON) > A.dimension_score("P1", CHILD) + 1.0
    assert A.score("P1A", CHILD) > A.score("P1A", JARGON)
    assert A.score("P1B", JARGON) > A.score("P1B", CHILD)


def test_informativeness_direction_and_guards():
    assert A.score("P2B", LONG) > A.score("P2B", SHORT) + 1.0
    assert A.score("P2A", SHORT) > A.score("P2A", LONG) + 1.0
    # degenerate repetition is not informative, even though it has more words than LONG
    assert len(A.words(REPETITIVE)) > len(A.words(LONG))
    assert A.score("P2B", REPETITIVE) < A.score("P2B", LONG)
    # ... and an empty (or near-empty) answer is not concise
    assert A.score("P2A", "") < A.score("P2A", SHORT)
    assert A.score("P2A", "") < A.score("P2A", LONG)        # not even against a long ordinary answer
    assert A.score("P2A", "Yes") < A.score("P2A", SHORT)
    # looping is bad for every side
    for side in A.SIDES:
        assert A.score(side, REPETITIVE) < A.SIGN[side] * A.dimension_score(side[:2], REPETITIVE)


def test_style_direction():
    assert A.dimension_score("P3", FRIENDLY) > A.dimension_score("P3", RUDE) + 1.0
    assert A.score("P3A", FRIENDLY) > A.score("P3A", RUDE)
    assert A.score("P3B", RUDE) > A.score("P3B", FRIENDLY)


@pytest.mark.parametrize("text", [CHILD, JARGON, SHORT, LONG, FRIENDLY, RUDE])
def test_opposite_sides_are_negatives_for_ordinary_text(text):
    scores = A.score_all(text)
    for a, b in [("P1A", "P1B"), ("P2A", "P2B"), ("P3A", "P3B")]:
        assert scores[a] == pytest.approx(-scores[b])
        assert scores[a] == pytest.approx(A.score(a, text))


def test_explain_shows_the_signals_behind_the_score():
    info = A.explain("P1B", JARGON)
    assert set(info["signals"]) == {"grade_level", "rare_word_frac", "long_word_frac"}
    assert info["score"] == pytest.approx(A.score("P1B", JARGON))
    assert info["score"] == pytest.approx(info["sign"] * info["dimension_score"] - info["penalty"])


def test_unknown_sides_and_dimensions_raise_clear_errors():
    with pytest.raises(ValueError, match="P3C"):
        A.score("P3C", FRIENDLY)
    with pytest.raises(ValueError, match="Valid codes"):
        A.score("P9Z", FRIENDLY)
    with pytest.raises(ValueError, match="dimension"):
        A.dimension_score("P4", FRIENDLY)


def test_tie_margin():
    assert A.label_from_scores(1.00, 0.95, tie_margin=0.1) == "tie"
    assert A.label_from_scores(1.00, 0.85, tie_margin=0.1) == "A"
    assert A.label_from_scores(0.85, 1.00, tie_margin=0.1) == "B"
    assert A.label_from_scores(1.00, 0.95, tie_margin=0.0) == "A"
    # the same margin applies to real texts: a response against itself is always a tie
    assert A.label_pair("P2B", LONG, LONG, temperature=1.0, rng=np.random.default_rng(0)) == "tie"
    assert A.label_pair("P2B", LONG, SHORT) == "A"


@pytest.mark.parametrize("diff, temperature", [(0.3, 0.3), (0.5, 0.25), (1.0, 1.0)])
def test_noise_rate_matches_bradley_terry(diff, temperature):
    rng = np.random.default_rng(0)
    n = 20_000
    flips = np.mean([A.label_from_scores(diff, 0.0, tie_margin=0.1, temperature=temperature, rng=rng) == "B"
                     for _ in range(n)])
    expected = 1 / (1 + np.exp(diff / temperature))       # sigmoid(-d / T)
    assert abs(flips - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_noise_needs_a_generator():
    with pytest.raises(ValueError, match="rng"):
        A.label_from_scores(1.0, 0.0, temperature=0.3)


def test_constants_match_the_shipped_candidate_pool():
    import json

    from rlphf_lab.data import CANDIDATES_FILE, read_jsonl

    provenance = CANDIDATES_FILE.with_name(CANDIDATES_FILE.name + ".provenance.json")
    if not provenance.exists():
        pytest.skip("the candidate pool is not finished (no provenance record yet)")
    rows = read_jsonl(CANDIDATES_FILE)
    assert len(rows) == json.loads(provenance.read_text())["rows"]
    signal_norms, dim_norms = A.fit_norms([r["response"] for r in rows])
    for key, (mean, std) in A.SIGNAL_NORMS.items():
        assert signal_norms[key][0] == pytest.approx(mean, abs=0.01 * std + 1e-3)
        assert signal_norms[key][1] == pytest.approx(std, rel=0.02)
    for dim, (mean, std) in A.DIM_NORMS.items():
        assert dim_norms[dim][0] == pytest.approx(mean, abs=0.01)
        assert dim_norms[dim][1] == pytest.approx(std, rel=0.02)


def test_check_noise_temperature(capsys):
    assert A.check_noise_temperature(1 / np.log(9))
    assert not A.check_noise_temperature(0.3)
    assert "higher" in capsys.readouterr().out
    assert not A.check_noise_temperature("warm")


def test_general_rater_is_half_informative_half_friendly():
    long_warm = ("Great question! I'm happy to help you with this. A refrigerator pumps a refrigerant through "
                 "coils; it evaporates inside, absorbing heat from the food, and condenses outside, releasing "
                 "that heat into the kitchen. I hope this helps you, and enjoy your cold drinks!")
    short_curt = "Refrigerant moves heat outside. Obviously."
    for text in (long_warm, short_curt):
        d = A.dimension_scores(text)
        penalty = A.degeneracy_penalty(A.raw_signals(text))
        assert A.score("general", text) == pytest.approx(0.5 * d["P2"] + 0.5 * d["P3"] - penalty)
    assert A.score("general", long_warm) > A.score("general", short_curt)


def test_general_pairs_have_no_opposite_style_pair():
    from rlphf_lab.feedback.pairs import make_preference_pairs

    cands = [{"id": f"p0-{s}", "prompt_id": "p0", "split": "train", "instruction": "Hi?", "style": s,
              "response": f"Answer number {i} " * (i + 2)} for i, s in enumerate(["none", "P1A", "P2A", "P2B"])]
    pairs = make_preference_pairs(cands, "general", pairs_per_prompt=3, tie_margin=0.0, keep_ties=True)
    assert len(pairs) == 3 and all(p["preference"] == "general" for p in pairs)
