"""Personalisation experiments on planted synthetic raters: right shapes, RFM beats pooled when raters
disagree, and "adapt to you" recovers a planted user's sign pattern from widget clicks."""
import numpy as np
import pytest
import torch

from rlphf_lab.data import FeedbackStore
from rlphf_lab.exercises import check_preference_prob
from rlphf_lab.feedback.raters import Rater, make_population
from rlphf_lab.rewards.personalize import (CURVES, L2_GRID, click_as, curve_table, fit_my_weights, new_user_curves,
                                           pairs_for_you, relabel, rfm_experiment, split_raters)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


N_ITEMS, D = 400, 16


def planted_world(disagreement, n_raters=16, per_rater=80, seed=0):
    """Items with true dimension scores (n, 3) seen through a random embedding (n, D); raters from
    rlphf_lab's own population model label random pairs by Bradley-Terry on <w_h, d(a) - d(b)>."""
    rng = np.random.default_rng(seed)
    dims = rng.standard_normal((N_ITEMS, 3))
    emb = np.tanh(dims @ rng.standard_normal((3, D))) + 0.05 * rng.standard_normal((N_ITEMS, D))
    features = {f"i{j:03d}": torch.tensor(emb[j], dtype=torch.float32) for j in range(N_ITEMS)}
    raters = make_population(n_raters, disagreement, seed=seed)
    pairs = []
    for r in raters:
        for k in range(per_rater):
            a, b = rng.choice(N_ITEMS, size=2, replace=False)
            p_a = 1 / (1 + np.exp(-np.dot(r.weights, dims[a] - dims[b]) / r.temperature))
            c, j = (a, b) if rng.random() < p_a else (b, a)
            pairs.append({"pair_id": f"{r.rater_id}-{k}", "rater": r.rater_id, "prompt_id": f"p{k}",
                          "instruction": "q", "chosen": f"text {c}", "rejected": f"text {j}",
                          "chosen_id": f"i{c:03d}", "rejected_id": f"i{j:03d}"})
    dims_by_id = {f"i{j:03d}": dims[j] for j in range(N_ITEMS)}
    return pairs, features, dims_by_id


TRAIN = {"hidden": 32, "epochs": 40, "batch_size": 256}


@pytest.fixture(scope="module")
def world():
    return planted_world("high", n_raters=20)


@pytest.fixture(scope="module")
def high(world):
    pairs, features, _ = world
    return rfm_experiment(pairs, features, d=4, ks=(0, 5, 50), n_heldout=4, n_val=4, n_test=25, seeds=(0, 1),
                          l2_linear=100.0, train_kwargs=TRAIN, progress=False)


def test_split_raters_is_disjoint_and_seeded():
    pairs, _, _ = planted_world("low", n_raters=6, per_rater=30)
    split = split_raters(pairs, n_heldout=2, n_test=10, min_pool=15, seed=3, n_val=1)
    assert len(split.heldout_raters) == 2 and len(split.val_pool) == 1 and len(split.train_raters) == 3
    assert not set(split.heldout_raters) & set(split.train_raters)
    assert not set(split.val_pool) & (set(split.train_raters) | set(split.heldout_raters))
    for r in split.heldout_raters:
        assert len(split.test[r]) == 10 and len(split.pool[r]) == 20
        assert not {p["pair_id"] for p in split.pool[r]} & {p["pair_id"] for p in split.test[r]}
    again = split_raters(pairs, n_heldout=2, n_test=10, min_pool=15, seed=3, n_val=1)
    assert again.heldout_raters == split.heldout_raters and again.test == split.test
    with pytest.raises(ValueError, match="Cannot hold out 3 \\+ 0 raters"):
        split_raters(pairs, n_heldout=3, n_test=10, min_pool=25)


def test_experiment_returns_every_curve_at_every_k(high):
    assert high["ks"] == [0, 5, 50]
    for name in CURVES:
        assert set(high[name]) == {0, 5, 50} and set(high["sem"][name]) == {0, 5, 50}
        assert all(0.0 <= v <= 1.0 for v in high[name].values())
    assert len(high["per_rater"]) == 4 and len(high["adapted"]) == 4
    assert high["pooled"][0] == high["pooled"][50]           # no adaptation: flat in k
    assert high["linear"][0] == 0.5                           # zero prior: a coin flip at k=0
    assert [r["method"] for r in curve_table(high, "high")] == list(CURVES)
    assert set(high["l2_scores"]) == set(L2_GRID) and high["trained"].l2 in L2_GRID


def test_validation_raters_choose_the_prior_strength():
    # raters who disagree need a weak pull toward the mean; for raters who agree a strong one costs nothing
    scores = {}
    for level in ("low", "high"):
        pairs, features, _ = planted_world(level, n_raters=20, per_rater=60)
        res = rfm_experiment(pairs, features, d=4, ks=(0, 5, 20), n_heldout=2, n_val=8, n_test=20, seeds=(0, 1),
                             strategies=("random",), train_kwargs=TRAIN, progress=False)
        scores[level] = res["l2_scores"]
        assert res["trained"].l2 == max(L2_GRID[::-1], key=lambda l2: res["l2_scores"][l2])
    assert scores["high"][100.0] < max(scores["high"].values()) - 0.05
    assert scores["low"][100.0] > max(scores["low"].values()) - 0.03


def test_rfm_adaptation_beats_pooled_when_raters_disagree(high):
    assert high["rfm"][50] > high["pooled"][50] + 0.1
    assert high["rfm"][50] > high["rfm"][0]                   # the k pairs taught it something
    assert high["rfm_active"][50] > high["pooled"][50]


def test_a_made_up_new_user_is_scored_on_relabelled_pairs(world, high):
    _, features, dims = world
    pool = [p for r in high["split"].heldout_raters for p in high["split"].pool[r]]
    contrarian = Rater("contrarian", (0.5, -0.5, -1.0), 0.01)      # opposite of the mean, almost noise-free
    flipped = relabel(pool, contrarian, dims)
    assert [p["pair_id"] for p in flipped] == [p["pair_id"] for p in pool]
    assert all({p["chosen_id"], p["rejected_id"]} == {q["chosen_id"], q["rejected_id"]} for p, q in zip(pool, flipped))
    assert all(np.dot(contrarian.weights, dims[p["chosen_id"]] - dims[p["rejected_id"]]) > -0.05 for p in flipped)
    curves = new_user_curves(high, contrarian, features, dims, seeds=(0,))
    assert set(curves) == {"ks", "rfm", "linear", "pooled", "oracle"}
    assert curves["oracle"][0] > 0.9                               # noise-free labels, true weights
    assert curves["pooled"][0] < 0.5 < curves["rfm"][50]           # pooled serves the mean; RFM adapts


def test_experiment_bad_input():
    pairs, features, _ = planted_world("low", n_raters=4, per_rater=20)
    with pytest.raises(ValueError, match="strategies"):
        rfm_experiment(pairs, features, ks=(0, 5), n_heldout=1, n_test=5, strategies=("greedy",))
    with pytest.raises(ValueError, match="Cannot hold out"):
        rfm_experiment(pairs, features, ks=(0, 50), n_heldout=1, n_test=5)


def planted_records(w_user, n=60, seed=1):
    """Records as the FeedbackWidget writes them, clicked by a user with weights w_user (plus BT noise)."""
    _, _, dims = planted_world("low", n_raters=1, per_rater=1)
    rng = np.random.default_rng(seed)
    ids = sorted(dims)
    records = []
    for k in range(n):
        a, b = rng.choice(len(ids), size=2, replace=False)
        p_a = 1 / (1 + np.exp(-np.dot(w_user, dims[ids[a]] - dims[ids[b]])))
        c, j = (ids[a], ids[b]) if rng.random() < p_a else (ids[b], ids[a])
        records.append({"pair_id": f"you-{k}", "rater": "student", "label": "A" if c == ids[a] else "B",
                        "chosen": f"text {c}", "rejected": f"text {j}", "chosen_id": c, "rejected_id": j})
    return records, dims


def test_fit_my_weights_recovers_the_sign_pattern():
    w_user = np.array([1.5, -1.0, 2.0])
    records, dims = planted_records(w_user)
    records.append({"pair_id": "you-tie", "rater": "student", "label": "tie", "chosen": None, "rejected": None})
    fit = fit_my_weights(records, dims)
    assert fit.n_pairs == 60                                  # the tie carries no choice
    assert np.sign(list(fit.weights.values())).tolist() == [1.0, -1.0, 1.0]
    assert fit.accuracy > 0.7 and "style +" in str(fit)


def test_fit_my_weights_without_labels_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="label some pairs in the widget above first"):
        fit_my_weights(FeedbackStore(tmp_path / "empty.jsonl"))
    with pytest.raises(ValueError, match="label some pairs"):
        fit_my_weights([{"pair_id": "x", "label": "skip", "chosen": None, "rejected": None}])


FRIENDLY = "Hey friend! Great question, happy to help! Plants use sunlight to make food, and it is awesome."
BLUNT = "Plants use sunlight to make food. Figure it out yourself, this is obviously a waste of time."


def test_click_as_drives_the_widget_and_the_fit_follows(tmp_path):
    from rlphf_lab.widgets import FeedbackWidget

    pairs = [{"pair_id": f"p{k}", "prompt_id": f"p{k}", "rater": "r", "instruction": "How do plants eat?",
              "chosen": BLUNT, "rejected": FRIENDLY, "chosen_id": f"p{k}-b", "rejected_id": f"p{k}-f"}
             for k in range(6)]
    shown = pairs_for_you(pairs, n=6)
    assert len(shown) == 6 and all(p["rater"] is None for p in shown)
    widget = FeedbackWidget(shown, tmp_path / "me.jsonl", preference="P3A")
    friendly_user = Rater("you", (0.0, 0.0, 1.0), 0.3)
    assert click_as(widget, friendly_user, n=10) == 6           # stops when the pairs run out
    records = FeedbackStore(tmp_path / "me.jsonl").records()
    assert {r["label"] for r in records} == {"A", "B"}           # the shown order is shuffled...
    assert all(r["chosen"] == FRIENDLY for r in records)         # ...but the friendly answer always wins
    fit = fit_my_weights(tmp_path / "me.jsonl")
    assert fit.weights["P3"] > 0 and fit.n_pairs == 6


def test_the_stand_in_never_writes_into_your_label_file(tmp_path):
    """Fewer than min_labels of your own clicks: a stand-in answers into its own file and yours is untouched;
    enough of yours: yours are fitted and the stand-in does nothing."""
    from rlphf_lab.feedback.clicks import record_choice
    from rlphf_lab.rewards.personalize import labels_to_fit

    pairs = pairs_for_you([{"pair_id": f"p{k}", "prompt_id": f"p{k}", "rater": "r", "instruction": "How do plants eat?",
                            "chosen": BLUNT, "rejected": FRIENDLY, "chosen_id": f"p{k}-b", "rejected_id": f"p{k}-f"}
                           for k in range(6)], n=6)
    mine = FeedbackStore(tmp_path / "my_labels.jsonl")
    mine.append(record_choice(pairs[0], "A", rater="you"))
    before = (tmp_path / "my_labels.jsonl").read_bytes()
    friendly = Rater("stand-in", (0.0, 0.0, 1.0), 0.3)
    path, whose = labels_to_fit(tmp_path / "my_labels.jsonl", pairs, friendly, min_labels=4)
    assert path == tmp_path / "stand_in_labels.jsonl" and "stand-in" in whose and "untouched" in whose
    assert (tmp_path / "my_labels.jsonl").read_bytes() == before
    records = FeedbackStore(path).records()
    assert len(records) == 4 and all(r["rater"] == "stand-in" and r["chosen"] == FRIENDLY for r in records)
    assert labels_to_fit(tmp_path / "my_labels.jsonl", pairs, friendly, min_labels=4)[0] == path   # resumes, no more
    assert len(FeedbackStore(path).records()) == 4
    path, whose = labels_to_fit(tmp_path / "my_labels.jsonl", pairs, friendly, min_labels=1)
    assert path == tmp_path / "my_labels.jsonl" and "your 1 labels" in whose


def test_check_preference_prob(capsys):
    assert check_preference_prob(lambda a, b, w: torch.sigmoid(((a - b) * w).sum(-1)))
    assert not check_preference_prob(lambda a, b, w: torch.sigmoid(((b - a) * w).sum(-1)))
    assert "phi(a) - phi(b)" in capsys.readouterr().out
    assert not check_preference_prob(lambda a, b, w: ((a - b) * w).sum(-1))
    assert not check_preference_prob(lambda a, b, w: torch.sigmoid((a - b) @ w).sum())
    assert not check_preference_prob(lambda a, b, w: 1 / 0)
