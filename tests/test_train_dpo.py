"""DPO side adapters (rl/dpo.py): the pair conversion, the loss on tiny tensors, a tiny DPOTrainer run
that raises the chosen-vs-rejected margin, and a DPO adapter mixed with a PPO one in one soup."""
import math

import pytest
import torch
import torch.nn.functional as F

from rlphf_lab.rl.dpo import check_dpo_out, dpo_loss, dpo_pairs, implicit_reward, last_checkpoint, train_dpo_side
from tiny_models import tiny_llama, tiny_tokenizer

X = "What is rain?"
SHORT, LONG = "Water falling from clouds.", "Rain is water that condenses in clouds and falls as drops to the ground."


def cand(cid, response, style="none", instruction=X):
    return {"id": cid, "prompt_id": cid.split("-")[0], "split": "train", "instruction": instruction,
            "style": style, "response": response}


CANDIDATES = [cand("p0-P2A", SHORT, "P2A"), cand("p0-P2B", LONG, "P2B"), cand("p0-hack-echo", X, "hack:echo")]


def pair(pid, chosen, rejected, side="P2A", gap=2.0, split="train"):
    return {"pair_id": pid, "preference": side, "split": split, "chosen_id": chosen, "rejected_id": rejected,
            "score_chosen": gap, "score_rejected": 0.0}


# ---- the data ---------------------------------------------------------------------------------------

def test_pairs_become_trl_conversational_rows_of_one_side():
    pairs = [pair("a", "p0-P2A", "p0-P2B"), pair("b", "p0-P2B", "p0-P2A", side="P2B")]
    rows = dpo_pairs(CANDIDATES, pairs, "p2a")                            # codes are case-insensitive
    assert rows == [{"prompt": [{"role": "user", "content": X}],
                     "chosen": [{"role": "assistant", "content": SHORT}],
                     "rejected": [{"role": "assistant", "content": LONG}], "pair_id": "a", "hack_rejected": False}]


def test_a_hack_is_kept_as_rejected_and_never_chosen_and_near_ties_go():
    pairs = [pair("keep", "p0-P2A", "p0-hack-echo"), pair("drop", "p0-hack-echo", "p0-P2B"),
             pair("tie", "p0-P2A", "p0-P2B", gap=0.2)]
    assert [r["pair_id"] for r in dpo_pairs(CANDIDATES, pairs, "P2A", min_gap=1.0)] == ["keep"]
    assert [r["pair_id"] for r in dpo_pairs(CANDIDATES, pairs, "P2A")] == ["keep", "tie"]


def test_pairs_that_carry_their_texts_need_no_candidates():
    pairs = [{"pair_id": "t", "preference": "P2A", "instruction": X, "chosen": SHORT, "rejected": LONG}]
    assert dpo_pairs([], pairs, "P2A")[0]["rejected"][0]["content"] == LONG


def test_hack_share_caps_the_pairs_that_reject_a_hack():
    pairs = [pair(f"h{i}", "p0-P2A", "p0-hack-echo") for i in range(10)] + [pair(f"n{i}", "p0-P2A", "p0-P2B") for i in range(10)]
    rows = dpo_pairs(CANDIDATES, pairs, "P2A", max_pairs=10, hack_share=0.2)
    assert len(rows) == 10 and sum(r["hack_rejected"] for r in rows) == 2
    few_normal = dpo_pairs(CANDIDATES, pairs[:14], "P2A", max_pairs=10, hack_share=0.0)
    assert sum(r["hack_rejected"] for r in few_normal) == 6          # too few others: hacks fill the rest
    with pytest.raises(ValueError, match="between 0 and 1"):
        dpo_pairs(CANDIDATES, pairs, "P2A", hack_share=1.5)


def test_max_pairs_keeps_a_seeded_subset():
    pairs = [pair(str(i), "p0-P2A", "p0-P2B") for i in range(20)]
    a, b = (dpo_pairs(CANDIDATES, pairs, "P2A", max_pairs=5, seed=3) for _ in range(2))
    assert a == b and len(a) == 5
    assert a != dpo_pairs(CANDIDATES, pairs, "P2A", max_pairs=5, seed=4)


def test_above_base_keeps_the_pairs_whose_winner_beats_the_base_models_answer():
    cands = CANDIDATES + [cand("p0-none", "Rain is water.", "none"), cand("p0-P3A", "Lovely question! Rain is water.", "P3A")]
    base_wins = {**pair("base-wins", "p0-none", "p0-P2B"), "score_chosen": 3.0}       # the base answer scores 3
    pairs = [base_wins, {**pair("above", "p0-P2A", "p0-P2B"), "score_chosen": 4.0},
             {**pair("below", "p0-P3A", "p0-P2B"), "score_chosen": 2.5}]
    assert [r["pair_id"] for r in dpo_pairs(cands, pairs, "P2A")] == ["base-wins", "above", "below"]
    assert [r["pair_id"] for r in dpo_pairs(cands, pairs, "P2A", above_base=True)] == ["above"]
    no_base = [pair("x", "p0-P2A", "p0-P2B")]                       # no labelled base answer: nothing to beat
    with pytest.raises(ValueError, match="leave out --above-base"):
        dpo_pairs(CANDIDATES, no_base, "P2A", above_base=True)


def test_excluded_prompts_are_never_trained_on():
    other = cand("p1-P2A", SHORT, "P2A", instruction="What is snow?")
    pairs = [pair("a", "p0-P2A", "p0-P2B"), pair("b", "p1-P2A", "p0-P2B")]
    assert [r["pair_id"] for r in dpo_pairs(CANDIDATES + [other], pairs, "P2A", exclude_prompts=["p0"])] == ["b"]


@pytest.mark.parametrize("pairs, side, message", [
    ([pair("a", "p0-P2A", "p0-P2B")], "P3B", r"No train pairs for side P3B.*\['P2A'\].*label-pairs"),
    ([pair("a", "p0-P2A", "p0-gone")], "P2A", r"Pair a has no rejected text.*p0-gone.*candidates"),
    ([{"pair_id": "e", "preference": "P2A", "instruction": X, "chosen": " ", "rejected": LONG}], "P2A",
     "no chosen text"),
    ([pair("a", "p0-P2A", "p0-P2B", gap=0.5)], "P2A", "lower --min-gap"),
    ([pair("a", "p0-P2A", "p0-P2B")], "P9Z", "P9Z"),
])
def test_bad_pairs_are_clear_errors(pairs, side, message):
    with pytest.raises(ValueError, match=message):
        dpo_pairs(CANDIDATES, pairs, side, min_gap=1.0)


# ---- the loss ---------------------------------------------------------------------------------------

def test_dpo_loss_is_bradley_terry_on_implicit_rewards():
    pc, pr = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])
    rc, rr = torch.tensor([-11.0, -18.0]), torch.tensor([-11.0, -16.0])
    beta = 0.5
    margins = torch.tensor([beta * (1.0 - (-1.0)), beta * (-2.0 - 1.0)])  # [1.0, -1.5]
    assert torch.allclose(implicit_reward(pc, rc, beta), torch.tensor([0.5, -1.0]))
    expected = torch.tensor([math.log1p(math.exp(-1.0)), math.log1p(math.exp(1.5))]).mean()
    assert torch.allclose(dpo_loss(pc, pr, rc, rr, beta), expected)
    assert torch.allclose(dpo_loss(pc, pr, rc, rr, beta), -F.logsigmoid(margins).mean())


def test_dpo_loss_starts_at_log2_and_its_gradient_favours_the_chosen():
    ref = torch.tensor([-5.0, -7.0])
    chosen, rejected = ref.clone().requires_grad_(True), ref.clone().requires_grad_(True)
    loss = dpo_loss(chosen, rejected, ref, ref, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))                      # the policy is the reference: a coin
    loss.backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()          # descent raises y_w, lowers y_l


# ---- the trainer on a tiny model ----------------------------------------------------------------------

def tiny_pairs(n, split):
    """n pairs of one side: the short answer beats the long one (different prompts)."""
    cands, pairs = [], []
    for i in range(n):
        x = f"Say {i}."
        cands += [dict(cand(f"q{split}{i}-a", f"Ok {i}.", "P2A", x), split=split),
                  dict(cand(f"q{split}{i}-b", f"Well, {i} is {i} and more {i}.", "P2B", x), split=split)]
        pairs.append(pair(f"{split}{i}", f"q{split}{i}-a", f"q{split}{i}-b", split=split))
    return cands, pairs


def train_tiny(out, **kw):
    train_c, train_p = tiny_pairs(8, "train")
    eval_c, eval_p = tiny_pairs(4, "eval")
    return train_dpo_side(train_c + eval_c, train_p, eval_p, "P2A", out, max_pairs=None, eval_pairs_n=4,
                          batch_size=4, learning_rate=kw.pop("learning_rate", 5e-2), lora_r=8, lora_alpha=16,
                          model=tiny_llama(), tokenizer=tiny_tokenizer(), device="cpu", **kw)


def test_a_tiny_dpo_run_raises_the_margin_and_writes_a_peft_folder(tmp_path):
    summary = train_tiny(tmp_path / "run", max_steps=12, save_steps=6)
    assert summary["eval_margin_before"] == pytest.approx(0.0, abs=1e-6)  # a fresh LoRA is the reference
    assert summary["eval_margin"] > 0.05 and summary["eval_accuracy"] == 1.0
    adapter = tmp_path / "run" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (tmp_path / "run" / "adapter.provenance.json").is_file()
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "rewards/margins" in header and "loss" in header
    assert last_checkpoint(tmp_path / "run").endswith("checkpoint-12")


def test_a_resumed_run_continues_from_its_checkpoint(tmp_path):
    train_tiny(tmp_path / "run", max_steps=6, save_steps=3)
    summary = train_tiny(tmp_path / "run", max_steps=9, save_steps=3, resume=True)
    assert summary["resumed_from"].endswith("checkpoint-6") and summary["steps"] == 9


def test_the_command_refuses_to_replace_a_run_unless_told(tmp_path):
    (tmp_path / "adapter").mkdir()
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        check_dpo_out(tmp_path)
    with pytest.raises(FileExistsError, match="no checkpoint to resume"):
        check_dpo_out(tmp_path, resume=True)
    with pytest.raises(ValueError, match="exclude each other"):
        check_dpo_out(tmp_path, resume=True, overwrite=True)
    (tmp_path / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (tmp_path / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    check_dpo_out(tmp_path, resume=True)                                  # there is something to continue
    check_dpo_out(tmp_path, overwrite=True)
    assert not (tmp_path / "checkpoints").exists() and (tmp_path / "adapter").exists()   # replaced at the end


def test_a_dpo_and_a_ppo_adapter_mix_in_one_soup(tmp_path):
    """The DPO adapter (TRL's PEFT folder) and a PPO-style adapter of another rank load side by side;
    the soup is the exact weighted delta, and one-hot weights give each adapter alone."""
    from peft import PeftModel

    from rlphf_lab import soups

    train_tiny(tmp_path / "dpo", max_steps=4)
    ppo = soups.random_lora_adapters(tiny_llama(), ["P2B"], tmp_path / "ppo", r=16, lora_alpha=32, std=0.1, seed=5)
    dirs = {"dpo-P2A": tmp_path / "dpo" / "adapter", "P2B": ppo["P2B"]}
    model = soups.load_adapters(tiny_llama(), dirs)
    ids = torch.tensor([[5, 17, 42, 99, 3]])

    def logits(weights):
        soups.set_soup_weights(model, weights)
        with torch.no_grad():
            return model(input_ids=ids).logits

    for name, folder in dirs.items():
        alone = PeftModel.from_pretrained(tiny_llama(), folder)
        with torch.no_grad():
            torch.testing.assert_close(logits({name: 1.0}), alone(input_ids=ids).logits)
    mixed = logits({"dpo-P2A": 0.5, "P2B": 0.5})
    merged = tiny_llama()
    with torch.no_grad():
        for module, delta in soups.exact_delta(model, {"dpo-P2A": 0.5, "P2B": 0.5}).items():
            merged.get_submodule(module).weight += delta
        torch.testing.assert_close(mixed, merged(input_ids=ids).logits, rtol=1e-4, atol=1e-5)


# ---- notebook 05b's exercise ---------------------------------------------------------------------------

def test_the_exercise_accepts_the_loss_and_names_each_usual_mistake(capsys):
    from rlphf_lab.exercises import check_dpo_loss

    assert check_dpo_loss(lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean())
    mistakes = {"beta is missing": lambda pc, pr, rc, rr, beta: -F.logsigmoid((pc - rc) - (pr - rr)).mean(),
                "sign is flipped": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean(),
                "reference is missing": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr)).mean(),
                "instead of the mean": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum(),
                "one number": lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))),
                "raised ZeroDivisionError": lambda *a: 1 / 0}
    for hint, fn in mistakes.items():
        capsys.readouterr()
        assert not check_dpo_loss(fn)
        assert hint in capsys.readouterr().out


def test_pair_rewards_see_the_margin_the_trainer_raised(tmp_path):
    from peft import PeftModel

    from rlphf_lab.rl.dpo import pair_rewards

    train_tiny(tmp_path / "run", max_steps=12)
    eval_c, eval_p = tiny_pairs(4, "eval")
    rows = dpo_pairs(eval_c, eval_p, "P2A", split="eval")
    model = PeftModel.from_pretrained(tiny_llama(), tmp_path / "run" / "adapter")
    table = pair_rewards(model, tiny_tokenizer(), rows)
    assert [r["pair_id"] for r in table] == [r["pair_id"] for r in rows]
    assert all(r["margin"] > 0 for r in table)
    assert all(r["margin"] == pytest.approx(r["reward_chosen"] - r["reward_rejected"], abs=1e-3) for r in table)


def test_a_dpo_run_leaves_no_bf16_autocast_for_a_later_ppo_run(tmp_path):
    """TRL's trainer (bf16 on this CPU) would leave Accelerate's process-wide state in bf16; PPO's
    accelerator made afterwards must not inherit it (its log-probs must stay fp32)."""
    from rlphf_lab.rl.policy import make_accelerator

    train_tiny(tmp_path / "run", max_steps=1)
    assert make_accelerator().mixed_precision == "no"
