"""The simulated annotators: directions on hand-written texts, tie margin, Bradley-Terry noise rate."""
import numpy as np
import pytest

from rlphf_lab.exercises import check_noise_temperature
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
    # the constants describe ordinary answers: hack rows (rlphf-lab add-hacks) are left out
    signal_norms, dim_norms = A.fit_norms([r["response"] for r in rows if not r["style"].startswith("hack:")])
    for key, (mean, std) in A.SIGNAL_NORMS.items():
        assert signal_norms[key][0] == pytest.approx(mean, abs=0.01 * std + 1e-3)
        assert signal_norms[key][1] == pytest.approx(std, rel=0.02)
    for dim, (mean, std) in A.DIM_NORMS.items():
        assert dim_norms[dim][0] == pytest.approx(mean, abs=0.01)
        assert dim_norms[dim][1] == pytest.approx(std, rel=0.02)


def test_check_noise_temperature(capsys):
    assert check_noise_temperature(1 / np.log(9))
    assert not check_noise_temperature(0.3)
    assert "higher" in capsys.readouterr().out
    assert not check_noise_temperature("warm")


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


# --------------------------------------------------------------------------------------------
# The degeneracy checks, one hand-made example each (instruction-free checks first)
# --------------------------------------------------------------------------------------------

RAIN = "Why does it rain?"
RAIN_ANSWER = ("Rain forms when warm, moist air rises and cools. Its water vapour condenses on dust into cloud "
               "droplets, which collide and merge. Once the drops are too heavy for the updrafts, they fall.")


def parts(text, instruction=None):
    return A.penalty_parts(A.raw_signals(text, instruction))


def test_ordinary_answers_pass_every_check():
    for text in (CHILD, JARGON, SHORT, LONG, FRIENDLY, RUDE, RAIN_ANSWER):
        assert A.degeneracy_penalty(A.raw_signals(text)) == 0, A.explain("P2A", text)["penalty_parts"]
    assert A.degeneracy_penalty(A.raw_signals(RAIN_ANSWER, RAIN)) == 0


def test_stems_and_topic_overlap():
    assert A.stem("scattering") == A.stem("scatters") == A.stem("scatter")
    assert A.stem("studies") == A.stem("study") and A.stem("movies") == A.stem("movie")
    assert A.topic_words("Explain the difference between atoms and molecules.") == {A.stem("atoms"), A.stem("molecules")}
    assert A.topic_overlap("How do I keep houseplants alive?", "Water your plants weekly.") == 0.5   # plant(s) in houseplant
    assert A.topic_overlap(RAIN, RAIN_ANSWER) == 1.0
    assert A.topic_overlap("Explain how it works.", "Anything.") is None                            # no topic words


def test_repeated_sentences_paragraphs_and_spans():
    twice_para = RAIN_ANSWER + "\n\n" + RAIN_ANSWER
    twice_space = RAIN_ANSWER + " " + RAIN_ANSWER[:-1] + " and"        # the copy joined by a space, cut
    s = A.raw_signals(twice_para)
    assert s["repeated_paragraph_frac"] == 0.5 and s["repeated_sentence_frac"] == 0.5
    assert A.distinct_trigram_frac(A.words(twice_para)) > A.MIN_DISTINCT_TRIGRAMS    # the old loop guard misses it
    assert parts(twice_para)["repetition"] == 1.0
    assert A.repeated_span_frac(A.words(twice_space)) > 0.4 and parts(twice_space)["repetition"] > 0.8
    # one sentence said again among five is how people write; half the sentences repeated is not
    assert A.repeated_frac(["It is cold.", "Rain falls from the clouds.", "Snow too.", "Rain falls from the clouds.",
                            "It dries later.", "Wind blows it away."]) == pytest.approx(1 / 5)
    assert parts("Rain falls from clouds. " * 4 + "It is wet.")["repetition"] == 1.0


def test_non_answers_and_refusals():
    for text in ("I do not know that.", "Good question.", "A good question, not an answer."):
        assert parts(text)["non_answer"] == 1.0, text
    assert A.new_content_words("Sunscreen, oh sunscreen.", "Why should I wear sunscreen?") == 0
    assert parts("Sunscreen, oh sunscreen.", "Why should I wear sunscreen?")["non_answer"] == 1.0
    assert parts(SHORT)["non_answer"] == 0          # "Plants make food from sunlight." says something
    assert A.refusal_frac("I'm sorry, but I can't help with that.") == 1.0
    assert parts("As an AI, I cannot answer questions about the weather. Please ask someone else.")["refusal"] == 1.0
    # one hedge in a real answer is fine
    assert parts("I'm not sure about every detail, but " + RAIN_ANSWER)["refusal"] == 0


def test_word_salad_and_word_order():
    salad = ("Quintessential epistemological juxtaposition heterogeneous paradigmatic phenomenological "
             "idiosyncratic perspicacious ubiquitous obfuscation.")
    assert A.function_word_frac(salad) == 0.0 and parts(salad)["word_salad"] == 1.0
    assert A.function_word_frac(RAIN_ANSWER) > 0.3
    assert A.function_word_frac("Ingredients:\n- 2 cups flour\n- 1 cup sugar\n- 3 large eggs") == 1.0  # a list
    assert A.word_order_errors(RAIN_ANSWER) == 0
    assert A.word_order_errors("The cat sat on the mat. Then it slept.") == 0
    assert A.word_order_errors("blue the of sky. is The air scatters") == 4   # lower start, "the of", ". is", " The"
    shuffled = [h["text"] for h in __import__("rlphf_lab.feedback.hacks", fromlist=["x"]).hack_answers(
        RAIN, RAIN_ANSWER, seed=0) if h["kind"] == "shuffled"][0]
    assert parts(shuffled)["word_order"] == 1.0


def test_unfinished_answers_cut_early_are_penalised_not_those_cut_by_the_budget():
    cut = "Rain forms when warm, moist air rises and coo"
    assert A.is_unfinished(cut) and parts(cut)["unfinished"] == 1.0
    assert not A.is_unfinished(RAIN_ANSWER)
    long_cut = " ".join([RAIN_ANSWER] * 3).replace("they fall.", "they fall,", 1)[:-1] + " and the"
    long_cut = long_cut.replace(RAIN_ANSWER.split(".")[0], "Here is why", 2)     # no repetition in question
    assert A.is_unfinished(long_cut)
    assert A.length_pieces(LONG + " It") >= A.UNFINISHED_OK and parts(LONG + " It")["unfinished"] == 0  # a long cut
    # a list whose items carry no full stop ends on a known word: finished; a cut item is not
    assert not A.is_unfinished("You need:\n- flour\n- sugar\n- eggs")
    assert A.is_unfinished("You need:\n- flour\n- sugar\n- the")
    assert A.is_unfinished("You need:\n- flour.\n- sugar.\n- eggs")
    for finished in ("Cheers! :)", "He said \"yes\"", "(smiles warmly)", "Done!\n```"):
        assert not A.is_unfinished(finished), finished


def test_prompt_echo_and_off_topic_need_the_instruction():
    echo = "Sure! " + RAIN
    assert A.echo_frac(echo, RAIN) > 0.5 and parts(echo, RAIN)["echo"] > 0
    assert parts("Sure! Explain why the sky is blue during the day and turns red at sunset.",
                 "Explain why the sky is blue during the day and turns red at sunset.")["echo"] == 1.0
    jazz = ("Jazz grew out of New Orleans around 1900, mixing blues, ragtime and brass-band marches, and the "
            "records of Louis Armstrong spread the style worldwide.")
    assert parts(jazz, RAIN)["off_topic"] == 1.0
    assert parts(jazz)["off_topic"] == 0 and A.raw_signals(jazz)["topic_overlap"] is None     # no instruction: skipped
    assert A.score("P2B", jazz, RAIN) < A.score("P2B", RAIN_ANSWER, RAIN) - 1
    assert A.score("P2B", jazz) == pytest.approx(A.score("P2B", jazz, None))


def test_explain_shows_every_check_and_the_reason():
    info = A.explain("P2A", "I do not know that.", RAIN)
    assert set(info["penalty_parts"]) == {"empty", "loop", "repetition", "non_answer", "refusal", "word_salad",
                                          "word_order", "unfinished", "echo", "off_topic"}
    assert info["penalty"] == pytest.approx(A.PENALTY * max(info["penalty_parts"].values()))
    assert info["penalty_reason"] in ("non_answer", "refusal", "off_topic") and info["instruction_checks"]
    assert info["score"] == pytest.approx(A.score("P2A", "I do not know that.", RAIN))
    assert A.explain("P2A", RAIN_ANSWER, RAIN)["penalty_reason"] is None
    general = A.explain("general", RAIN_ANSWER, RAIN)
    assert general["score"] == pytest.approx(A.score("general", RAIN_ANSWER, RAIN))


def test_a_full_penalty_puts_any_answer_below_every_ordinary_one():
    # dimension scores lie within about +-3.5 (standardised signals are clipped to +-3), so PENALTY = 8
    # keeps a fully penalised answer at least one standard deviation below any unpenalised one
    bound = max(Z_ / s for _, s in A.DIM_NORMS.values() for Z_ in [A.Z_CLIP]) + max(abs(m) for m, _ in A.DIM_NORMS.values())
    assert A.PENALTY - 2 * bound >= 1.0 - 0.1


# Hand audit of the shipped pool (train split, prompts p0000-p0255 of the 1,120 candidates): the
# candidates a reader judged degenerate (loops, persona rambles, refusals, off-topic quips). Every
# other one is an ordinary answer; at most 3% of those may get any penalty.
AUDITED_HASH = "3fe233c8db4143c2"       # sha256 of the audited [id, response] rows, so an edit is noticed
AUDITED_DEGENERATE = set("""
p0001-P1B p0001-P3A p0003-P3B p0005-P3B p0006-P1B p0007-P3A p0008-P1B p0008-P3A p0011-P3B p0012-P3A p0018-P1A
p0040-P3A p0042-P1B p0050-P1A p0050-P3A p0055-P1B p0056-P3A p0080-P1B p0080-P3B p0081-P3A p0081-P3B p0082-P3B
p0086-P3A p0087-P3A p0090-P1A p0092-P3A p0093-P1B p0093-P3B p0095-P3A p0097-P1A p0097-P2A p0097-P3A p0098-P3B
p0120-P3A p0121-P3A p0122-P1A p0122-P3B p0123-P3B p0125-P3A p0125-P3B p0126-P1A p0126-P1B p0126-P3B p0127-P3A
p0127-P3B p0130-P3B p0131-P1B p0132-P3A p0133-P1B p0133-P3A p0135-P3A p0137-P1B p0137-P3B p0138-P1B p0138-P2A
p0138-P3A p0138-P3B p0160-P1A p0160-P3A p0161-P3B p0162-P1B p0163-P3A p0163-P3B p0165-P2B p0165-P3B p0166-P2B
p0167-none p0167-P1A p0167-P3B p0170-P3B p0171-P3A p0172-P3B p0175-P3B p0176-P3B p0177-P2B p0178-P1A p0201-P3A
p0201-P3B p0203-P1A p0205-P1B p0205-P3A p0206-P3B p0210-P3A p0210-P3B p0211-P3A p0212-P3A p0213-P1A p0217-P3A
p0218-P1A p0218-P1B p0242-P1A p0243-P1A p0243-P3A p0245-P2B p0245-P3A p0247-P3A p0248-P1A p0248-P3B p0252-P3B
p0253-P3A p0255-P3A p0255-P3B
""".split())


def test_ordinary_answers_of_the_shipped_pool_are_rarely_penalised():
    import hashlib
    import json

    from rlphf_lab.data import CANDIDATES_FILE, read_jsonl

    if not CANDIDATES_FILE.exists():
        pytest.skip("no shipped candidate pool")
    rows = sorted((r for r in read_jsonl(CANDIDATES_FILE) if r["split"] == "train" and r["prompt_id"] <= "p0255"
                   and not r["style"].startswith("hack:")), key=lambda r: r["id"])
    digest = hashlib.sha256(json.dumps([[r["id"], r["response"]] for r in rows], ensure_ascii=False).encode())
    if digest.hexdigest()[:16] != AUDITED_HASH:
        pytest.skip("the audited candidates changed: audit the penalised ones again and update AUDITED_*")
    ordinary = [r for r in rows if r["id"] not in AUDITED_DEGENERATE]
    flagged = [r["id"] for r in ordinary if A.degeneracy_penalty(A.raw_signals(r["response"], r["instruction"])) > 0]
    rate = len(flagged) / len(ordinary)
    print(f"\n{len(flagged)} of {len(ordinary)} ordinary train answers penalised ({rate:.1%}): {flagged}")
    assert rate <= 0.03
    for style in ["none"] + list(A.SIDES):
        mine = [r for r in ordinary if r["style"] == style]
        assert sum(r["id"] in flagged for r in mine) / len(mine) <= 0.05, style
