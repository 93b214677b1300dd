"""Reward models: both back ends save and reload to the same scores; features respect padding."""
import math

import pytest
import torch

from rlphf_lab.rewards.losses import bradley_terry_loss
from rlphf_lab.rewards.reward_model import (RewardModel, RewardScorer, load_reward_model, pair_accuracy,
                                            train_head)


def test_bradley_terry_loss_hand_case():
    # -log sigmoid(2 - 0) = log(1 + e^-2); -log sigmoid(0) = log 2
    loss = bradley_terry_loss(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2, rel=1e-6)


def _planted_pairs(n=200, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(dim, generator=g)
    a, b = torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)
    better_a = (a @ w) > (b @ w)
    chosen = torch.where(better_a.unsqueeze(1), a, b)
    rejected = torch.where(better_a.unsqueeze(1), b, a)
    return chosen, rejected


def test_feature_head_learns_a_planted_preference():
    c, r = _planted_pairs()
    head, result = train_head(c[:150], r[:150], epochs=200)
    with torch.no_grad():
        assert pair_accuracy(head(c[150:]), head(r[150:])) > 0.85
    assert result.losses[-1] < result.losses[0]


def test_feature_model_save_load_gives_identical_scores(tmp_path):
    c, r = _planted_pairs()
    head, _ = train_head(c, r, epochs=20)
    rm = RewardModel("P2A", "features", head=head, score_mean=0.3, score_std=2.0, metrics={"eval_accuracy": 0.9})
    rm.save(tmp_path / "P2A")
    again = load_reward_model(tmp_path / "P2A")
    assert again.side == "P2A" and again.metrics["eval_accuracy"] == 0.9
    assert torch.equal(rm.score_features(c), again.score_features(c))
    assert torch.allclose(rm.score_features(c, normalize=False), rm.score_features(c) * 2.0 + 0.3, atol=1e-5)


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="same shape"):
        train_head(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(FileNotFoundError, match="train-rewards"):
        load_reward_model(tmp_path)
    with pytest.raises(ValueError, match="at least one reward model"):
        RewardScorer(None, None, {})


@pytest.mark.model
def test_features_do_not_depend_on_batch_padding(policy):
    from rlphf_lab.rewards.features import backbone_features

    model, tok = policy
    alone = backbone_features(model, tok, ["Name a fruit."], ["An apple."])
    batched = backbone_features(model, tok, ["Name a fruit.", "Explain in detail how tides work on Earth."],
                                ["An apple.", "Tides come from the moon's gravity pulling on the oceans, " * 3])
    # equal up to bf16 rounding: relative difference of the whole vector below 2%
    assert (alone[0] - batched[0]).norm() / alone[0].norm() < 0.02
    from rlphf_lab.rewards.features import N_FLUENCY, N_RELEVANCE
    log_len = -1 - N_FLUENCY - N_RELEVANCE             # the log-length feature, before fluency and relevance
    assert alone[0, log_len] == batched[0, log_len] > 0   # it ignores padding exactly


@pytest.mark.model
def test_relevance_features_tell_an_answer_from_an_off_topic_one(policy):
    """pmi = log p(y | x) - log p(y | no x) per answer token: the instruction helps predict an answer to it,
    not a fluent paragraph about something else; and the features come back in the order given."""
    from rlphf_lab.rewards.features import N_RELEVANCE, backbone_features

    model, tok = policy
    question = "Why is the sky blue?"
    answer = "Sunlight scatters off the molecules of the air, and blue light scatters the most, so the sky looks blue."
    off_topic = "Bananas are a good source of potassium, and they grow in warm tropical climates."
    phi = backbone_features(model, tok, [question, question, "Name a fruit."], [answer, off_topic, "An apple."])
    pmi, pmi_head, cos = phi[:, -N_RELEVANCE:].T
    assert pmi[0] > pmi[1] + 0.5 and pmi_head[0] > pmi_head[1]
    assert pmi[0] > 0 > pmi[1]
    alone = backbone_features(model, tok, ["Name a fruit."], ["An apple."])
    assert torch.allclose(alone[0], phi[2], rtol=1e-3, atol=1e-3)       # batched by length, returned in order


@pytest.mark.model
def test_scorer_returns_one_column_per_side_and_depends_on_response(policy):
    model, tok = policy
    from rlphf_lab.rewards.features import feature_dim
    dim = feature_dim(model)
    torch.manual_seed(0)
    heads = {s: RewardModel(s, "features", head=train_head(torch.randn(8, dim), torch.randn(8, dim), epochs=2)[0])
             for s in ("P2A", "P3B")}
    scorer = RewardScorer(model, tok, heads)
    out = scorer(["P2A", "P3B"], ["Why is the sky blue?"] * 2, ["Because of scattering.", "No idea, go away."])
    assert out.shape == (2, 2)
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="No reward model for"):
        scorer(["P1A"], ["x"], ["y"])


@pytest.mark.model
def test_trl_reward_model_reload_keeps_the_trained_score_head(tmp_path):
    """The reference code lost its trained head on reload (modules_to_save). Ours keeps it."""
    from rlphf_lab.rewards.reward_model import load_trl_model, train_trl_reward_model, trl_scores

    pairs = [{"instruction": "Say hi.", "chosen": "Hi!", "rejected": "Go away.", "preference": "P3A"},
             {"instruction": "Name a colour.", "chosen": "Blue, my friend!", "rejected": "Whatever. Blue.",
              "preference": "P3A"}] * 2
    model, tok = train_trl_reward_model("P3A", pairs, out_dir=tmp_path / "run", max_steps=2, batch_size=2,
                                        learning_rate=5e-3)
    ins, res = [p["instruction"] for p in pairs[:2]], [p["chosen"] for p in pairs[:2]]
    before = trl_scores(model, tok, ins, res)
    rm = RewardModel("P3A", "trl", seqcls=model)
    rm.save(tmp_path / "P3A")
    again = load_reward_model(tmp_path / "P3A")
    after = trl_scores(again.seqcls, tok, ins, res)
    # equal up to bf16 rounding (training ran in bf16 autocast, the reload runs in fp32)
    assert torch.allclose(before, after, atol=0.05), (before, after)
    from rlphf_lab.rewards.reward_model import _seqcls_base
    base, _ = _seqcls_base()
    fresh = trl_scores(base, tok, ins, res)
    print("fresh head", fresh, "trained + reloaded", after)
    assert (fresh - after).abs().max() > 0.2, "the reloaded head scores like a fresh random head"


def test_the_feature_cache_is_keyed_by_the_backbone_and_its_dtype(tmp_path, monkeypatch):
    """Features of another model (or the same model in another dtype) are never read from the cache."""
    import torch

    from rlphf_lab import config
    from rlphf_lab.rewards import features as F
    from tiny_models import tiny_llama, tiny_tokenizer

    monkeypatch.setattr(config, "cache_dir", lambda: tmp_path)
    rows = [{"id": "a", "instruction": "Say hi.", "response": "Hi there."}]
    tok = tiny_tokenizer()
    first = F.cached_features(tiny_llama(), tok, rows, name="t", progress=False)
    again = F.cached_features(tiny_llama(), tok, rows, name="t", progress=False)
    assert len(list((tmp_path / "features").glob("t-*.pt"))) == 1 and torch.equal(first["a"], again["a"])
    F.cached_features(tiny_llama().to(torch.bfloat16), tok, rows, name="t", progress=False)
    assert len(list((tmp_path / "features").glob("t-*.pt"))) == 2
