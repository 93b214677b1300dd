"""The PPO trainer end to end: outputs, resume, reward wiring, Accelerate (rl/trainer.py, rl/multi.py).

Most tests use the tiny random Llama (milliseconds per step); the ones marked `model` run the
real SmolLM2 at the smallest size that still exercises every phase.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rlphf_lab.rl import (PPOConfig, PPOTrainer, Query, latest_checkpoint, personalized_soups, ppo, prompted_morl,
                          read_metrics, toy_length_score_fn)
from tiny_models import tiny_llama, tiny_tokenizer

PROMPTS = ["Say hi.", "Name a fruit.", "Why is the sky blue?", "Count to three."]
TINY = dict(batch_size=2, mini_batch_size=1, ppo_epochs=2, max_new_tokens=8, learning_rate=1e-2)


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def _trainer(out, model=None, tok=None, objective=None, **overrides):
    objective = objective or personalized_soups("P2A", toy_length_score_fn)
    config = PPOConfig(output_dir=str(out), **{"iterations": 1, **TINY, **overrides})
    return PPOTrainer(config, model or tiny_llama(), tok or tiny_tokenizer(), PROMPTS, **objective.trainer_kwargs())


def _weights(folder):
    adapter = load_file(Path(folder) / "adapter" / "adapter_model.safetensors")
    value = load_file(Path(folder) / "adapter" / "value_head.safetensors")
    return {**adapter, **{f"value_head.{k}": v for k, v in value.items()}}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)


# --------------------------------------------------------------------------------------------
# Tiny model: fast
# --------------------------------------------------------------------------------------------

def test_one_iteration_writes_adapter_metrics_provenance_and_calls_back(tmp_path):
    seen = []
    trainer = _trainer(tmp_path)
    trainer.callback = seen.append
    history = trainer.train(command="pytest")
    assert len(history) == 1 and seen == history
    for name in ["adapter_config.json", "adapter_model.safetensors", "value_head.safetensors"]:
        assert (tmp_path / "adapter" / name).is_file(), name
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and set(config["target_modules"]) == {"q_proj", "v_proj"}
    rows = read_metrics(tmp_path)
    assert len(rows) == 1
    for key in ["reward/score", "reward/P2A", "kl/response", "kl/coef", "policy/entropy", "response/length",
                "policy/clipfrac", "loss/value", "policy/approx_kl", "value/explained_variance", "time/generation",
                "time/reference", "time/policy", "time/other"]:
        assert key in rows[0], key
    # at the start LoRA's B is 0, so the policy IS the reference: KL exactly 0 in iteration 1
    assert rows[0]["kl/response"] == 0.0
    record = json.loads((tmp_path / "adapter.provenance.json").read_text())
    assert record["command"] == "pytest" and record["seed"] == 0 and record["iterations"] == 1


def test_training_moves_the_adapter_but_not_the_reference(tmp_path):
    trainer = _trainer(tmp_path, iterations=2)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    mask, response = torch.ones_like(ids), ids[:, -3:]
    before, _, _ = trainer.forward_logprobs(ids, mask, response)
    trainer.train()
    after, _, _ = trainer.forward_logprobs(ids, mask, response)
    ref, _, _ = trainer.forward_logprobs(ids, mask, response, use_adapter=False)
    assert not torch.allclose(after, before)            # the policy learned something
    torch.testing.assert_close(ref, before)              # adapter off = the untouched base model


def test_training_logprobs_are_those_of_the_sampling_distribution(tmp_path):
    """The forward pass PPO trains on must give the log-probs the sampler used: same temperature,
    same token alignment, left padding and all (a shift by one token would train on noise)."""
    from rlphf_lab.models import format_chat

    trainer = _trainer(tmp_path)
    for name, p in trainer.unwrapped.named_parameters():
        if "lora_B" in name:                       # a non-trivial adapter
            torch.nn.init.normal_(p, std=0.5)
    tok = trainer.tokenizer
    enc = tok([format_chat(tok, "Hi."), format_chat(tok, "Name a fruit, please, a long one.")], return_tensors="pt",
              padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    out = trainer.unwrapped.policy.generate(**enc, max_new_tokens=8, do_sample=True, temperature=0.7, top_k=0,
                                            top_p=1.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                            output_logits=True, return_dict_in_generate=True)
    response = out.sequences[:, enc["input_ids"].shape[1]:]
    mask, _ = ppo.response_mask(response, tok.eos_token_id)
    sampled = ppo.logprobs_from_logits(torch.stack(out.logits, dim=1), response, temperature=0.7)
    attention = torch.cat([enc["attention_mask"], mask.long()], dim=1)
    trained, _, _ = trainer.forward_logprobs(out.sequences, attention, response)
    torch.testing.assert_close(trained * mask, sampled * mask, rtol=0, atol=1e-5)


def test_logits_for_logprobs_are_fp32_in_a_bf16_model(tmp_path):
    """bf16 logits are rounded to steps of up to 0.125; the trainer computes them in fp32."""
    trainer = _trainer(tmp_path, model=tiny_llama().to(torch.bfloat16))
    for name, p in trainer.unwrapped.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    ids = torch.randint(0, 256, (2, 12))
    mask = torch.ones_like(ids)
    logits, values = trainer.unwrapped(ids, mask, 5)
    assert logits.dtype == torch.float32 and values.dtype == torch.float32
    assert (logits != logits.bfloat16().float()).float().mean() > 0.5     # not bf16 numbers cast up
    logprobs, _, _ = trainer.forward_logprobs(ids, mask, ids[:, -5:])
    assert logprobs.dtype == torch.float32 and torch.isfinite(logprobs).all()


def test_held_out_evaluation_logs_scores_kl_and_judge_win_rate(tmp_path):
    objective = personalized_soups("P2A", toy_length_score_fn)
    config = PPOConfig(output_dir=str(tmp_path), iterations=3, eval_every=2, **TINY)
    judge = lambda instructions, responses: torch.tensor([[-len(r)] for r in responses], dtype=torch.float32)
    trainer = PPOTrainer(config, tiny_llama(), tiny_tokenizer(), PROMPTS, eval_prompts=["Hello?", "Name a colour."],
                         judge_fn=judge, **objective.trainer_kwargs())
    before = trainer.evaluate()                       # untrained: the policy is the reference (same seeds)
    assert before["eval/kl"] == pytest.approx(0.0, abs=1e-5)
    assert before["eval/win_rate"] == 0.5 and before["eval/judge_win_rate"] == 0.5
    assert before["eval/score"] == pytest.approx(before["eval/ref_score"])
    history = trainer.train()
    assert [bool(m["eval/kl"] != "") for m in history] == [False, True, True]    # every 2 iterations and the end
    rows = read_metrics(tmp_path)
    assert "eval/judge_win_rate" in rows[1] and "eval/judge_win_rate" not in rows[0]
    assert rows[2]["eval/kl"] > 0
    with pytest.raises(ValueError, match="eval_prompts"):
        PPOTrainer(config, tiny_llama(), tiny_tokenizer(), PROMPTS, **objective.trainer_kwargs())


def test_ppo_raises_a_simple_reward(tmp_path):
    """End to end on the tiny model: reward = share of lowercase ASCII letters in the response.
    (LoRA also on lm_head: a 2-layer random model barely moves through q/v alone.)"""
    def reward_fn(instructions, responses):
        return torch.tensor([[sum(c.islower() and c.isascii() for c in r) / 8] for r in responses])

    config = PPOConfig(output_dir=str(tmp_path), iterations=20, batch_size=16, mini_batch_size=8, max_new_tokens=8,
                       learning_rate=1e-2, temperature=1.0, missing_eos_penalty=None,
                       adap_kl_ctrl=False, init_kl_coef=0.2,    # a fixed KL price: this test is about the reward
                       lora_target_modules=["q_proj", "v_proj", "lm_head"])
    history = PPOTrainer(config, tiny_llama(), tiny_tokenizer(), PROMPTS, reward_fn).train()
    first = sum(m["reward/score"] for m in history[:5]) / 5
    last = sum(m["reward/score"] for m in history[-5:]) / 5
    assert last > first + 0.1, (first, last)          # about 0.13 -> 0.31 with seed 0


def test_resume_after_interruption_gives_the_same_result_as_one_run(tmp_path):
    kw = dict(iterations=4, missing_eos_penalty=None)     # so that the reward statistics matter
    # uninterrupted: 4 iterations
    _trainer(tmp_path / "whole", **kw).train()

    # interrupted after iteration 3, with a checkpoint at iteration 2
    def stop_after_three(metrics):
        if metrics["iteration"] == 3:
            raise KeyboardInterrupt
    broken = _trainer(tmp_path / "split", save_every=2, **kw)
    broken.callback = stop_after_three
    with pytest.raises(KeyboardInterrupt):
        broken.train()
    assert latest_checkpoint(tmp_path / "split").name == "iteration-00002"
    assert len(read_metrics(tmp_path / "split")) == 3

    resumed = _trainer(tmp_path / "split", save_every=2, **kw)
    history = resumed.train(resume=True)
    assert [m["iteration"] for m in history] == [3, 4]
    _assert_same_weights(tmp_path / "whole", tmp_path / "split")
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert [r["iteration"] for r in split] == [1, 2, 3, 4]       # the half-done iteration 3 was redone once
    for a, b in zip(whole, split):
        assert {k: v for k, v in a.items() if not k.startswith("time/")} == \
               {k: v for k, v in b.items() if not k.startswith("time/")}


def test_a_fresh_run_in_the_same_folder_replaces_the_old_one_only_with_overwrite(tmp_path):
    _trainer(tmp_path, iterations=2, save_every=1).train()
    with pytest.raises(FileExistsError, match="--overwrite"):     # tests/test_reliability.py has the details
        _trainer(tmp_path, iterations=1).train()
    assert len(read_metrics(tmp_path)) == 2
    _trainer(tmp_path, iterations=1).train(overwrite=True)
    assert len(read_metrics(tmp_path)) == 1
    assert latest_checkpoint(tmp_path).name == "iteration-00001"
    assert not (tmp_path / "replaced").exists()                   # the old run is gone once the new one is done


def test_reward_function_gets_plain_instructions_and_the_sampled_responses(tmp_path):
    calls = []

    def score_fn(codes, instructions, responses):
        calls.append((list(instructions), list(responses)))
        return toy_length_score_fn(codes, instructions, responses)

    trainer = _trainer(tmp_path, objective=prompted_morl(score_fn))
    queries = trainer.draw_queries(0)
    assert all("Generate a response" in q.prompt and q.instruction in PROMPTS for q in queries)
    rollout = trainer.rollout(queries, iteration=0)
    instructions, responses = calls[-1]
    assert instructions == [q.instruction for q in queries]     # never the prompt with the preference
    assert responses == rollout.responses
    # the rollout's responses are the decoded response tokens up to the EOS
    assert rollout.responses == trainer.decode(rollout.response, rollout.mask)


def test_score_changes_when_only_the_response_changes(tmp_path):
    trainer = _trainer(tmp_path, objective=prompted_morl(toy_length_score_fn))
    query = trainer.draw_queries(0)[0]
    _, scores = trainer.score([query, query], ["Yes.", "Yes, and here is a much longer answer with many words."])
    assert scores[0] != scores[1]


def test_bad_reward_shape_and_batch_split_are_clear_errors(tmp_path):
    trainer = PPOTrainer(PPOConfig(output_dir=str(tmp_path), **TINY), tiny_llama(), tiny_tokenizer(), PROMPTS,
                         reward_fn=lambda instructions, responses: torch.zeros(len(responses)))
    with pytest.raises(ValueError, match=r"\(batch, K\)"):
        trainer.score([Query("a", "a")], ["b"])
    with pytest.raises(ValueError, match="multiple of mini_batch_size"):
        PPOConfig(batch_size=6, mini_batch_size=4)
    tok = tiny_tokenizer()
    tok.pad_token = tok.eos_token
    with pytest.raises(ValueError, match="differ from EOS"):
        PPOTrainer(PPOConfig(output_dir=str(tmp_path), **TINY), tiny_llama(), tok, PROMPTS,
                   reward_fn=lambda i, r: torch.zeros(len(r), 1))


def test_reference_normalisation_uses_reference_samples(tmp_path):
    trainer = _trainer(tmp_path, reward_normalization="reference", reference_samples=4)
    trainer.train()
    assert trainer.reward_stats.count == 4
    state = json.loads((latest_checkpoint(tmp_path) / "trainer_state.json").read_text())
    assert state["reward_stats"]["count"] == 4


# --------------------------------------------------------------------------------------------
# The real model
# --------------------------------------------------------------------------------------------

@pytest.mark.model
def test_smollm2_iteration_and_resume_equal_an_uninterrupted_run(tmp_path):
    from rlphf_lab.models import load_policy

    kw = dict(ppo_epochs=1, mini_batch_size=2)
    # 2 + 2 iterations ...
    _trainer(tmp_path / "split", *load_policy(), iterations=2, **kw).train()
    assert (tmp_path / "split" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "split" / "adapter.provenance.json").is_file()
    rows = read_metrics(tmp_path / "split")
    assert rows[0]["kl/response"] == 0.0 and rows[0]["response/length"] > 0
    _trainer(tmp_path / "split", *load_policy(), iterations=4, **kw).train(resume=True)
    # ... equal 4 iterations in one go
    _trainer(tmp_path / "whole", *load_policy(), iterations=4, **kw).train()
    _assert_same_weights(tmp_path / "whole", tmp_path / "split")


@pytest.mark.model
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU (gloo) path")
def test_accelerate_launch_with_two_cpu_processes(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a machine without GPUs runs train-policy in
    two CPU processes (gloo): each samples one prompt. (With `--cpu`, accelerate 1.15 starts a single
    process unless MPI is set up, so the torchrun-based launcher is the one that scales on CPU.)"""
    out = tmp_path / "ddp"
    env = {**os.environ, "RLPHF_QUICK": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "rlphf_lab.cli", "train-policy", "--preference", "P2A", "--reward", "toy-length",
           "--iterations", "1", "--batch-size", "2", "--mini-batch-size", "2", "--ppo-epochs", "1",
           "--max-new-tokens", "8", "--limit", "4", "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "adapter.provenance.json").read_text())
    assert record["processes"] == 2
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1                                   # written once, by the main process
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "checkpoints" / "iteration-00001" / "rng_state_1.pt").is_file()   # one per process


def test_generation_leaves_the_shared_tokenizer_and_the_global_rng_as_they_were(tmp_path):
    tok = tiny_tokenizer()
    tok.padding_side = "right"                      # what a notebook's own cell may have set
    trainer = _trainer(tmp_path, tok=tok)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    trainer.generate([Query("Say hi.", "Say hi."), Query("Name a long fruit please.", "x")], seed=3)
    assert tok.padding_side == "right"
    assert torch.equal(torch.get_rng_state(), state)
