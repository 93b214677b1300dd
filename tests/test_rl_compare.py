"""Notebook 04/05 glue: the live plot, before/after tables, shipped adapters, and the TRL baseline
(rl/live.py, rl/compare.py, rl/trl_baseline.py). Tiny random models only: seconds in all."""
import pytest
import torch

from rlphf_lab.rl import PPOConfig, personalized_soups, toy_length_score_fn
from rlphf_lab.rl import compare, trl_baseline
from rlphf_lab.rl.live import LivePlot, plot_curves, plot_policy_scores
from tiny_models import tiny_llama, tiny_tokenizer

PROMPTS = ["Say hi.", "Name a fruit.", "Why is the sky blue?", "Count to three."]


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def test_live_plot_records_every_iteration_and_draws_each_panel():
    live = LivePlot(total=3, show=False)
    for i in range(3):
        live({"iteration": i + 1, "reward/score": 0.1 * i, "kl/response": 0.5 * i, "response/length": 10 - i})
    assert len(live.history) == 3
    assert live.series("kl/response") == ([1, 2, 3], [0.0, 0.5, 1.0])
    for ax in live.axes:                      # each panel holds one line with all three points
        assert len(ax.lines[0].get_xdata()) == 3
    assert live.png().startswith(b"\x89PNG")
    live.for_run("other")({"iteration": 1, "reward/score": 2.0, "kl/response": 0.0, "response/length": 5})
    assert live.runs() == [None, "other"] and live.series("reward/score", "other") == ([1], [2.0])
    assert len(live.axes[0].lines) == 2       # one line per run
    with pytest.raises(ValueError, match="at least one"):
        LivePlot(panels=[], show=False)


def test_live_plot_as_trainer_callback(tmp_path):
    from rlphf_lab.rl import PPOTrainer

    live = LivePlot(total=2, show=False)
    obj = personalized_soups("P2A", toy_length_score_fn)
    cfg = PPOConfig(output_dir=str(tmp_path), iterations=2, batch_size=2, mini_batch_size=1, ppo_epochs=1,
                    max_new_tokens=6)
    PPOTrainer(cfg, tiny_llama(), tiny_tokenizer(), PROMPTS, callback=live, **obj.trainer_kwargs()).train()
    assert [m["iteration"] for m in live.history] == [1, 2]
    xs, ys = live.series("reward/score")
    assert len(ys) == 2


def test_score_policy_answers_with_and_without_adapter_and_tables():
    from peft import LoraConfig, get_peft_model

    tok = tiny_tokenizer()
    model = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    base = compare.score_policy_answers(model, tok, PROMPTS[:2], toy_length_score_fn, ["P2A", "P2B"], label="base",
                                        use_adapter=False, max_new_tokens=5, weights=[1.0, 0.0])
    assert [r["label"] for r in base] == ["base", "base"]
    for r in base:
        assert r["P2A"] == pytest.approx(-r["P2B"]) and r["reward"] == pytest.approx(r["P2A"])
        assert isinstance(r["tokens"], int) and r["tokens"] >= 0
    trained = compare.score_policy_answers(model, tok, PROMPTS[:2], toy_length_score_fn, ["P2A"], label="trained",
                                           max_new_tokens=5)
    summary = compare.means_by_label(base + trained, ["P2A"])
    assert [s["label"] for s in summary] == ["base", "trained"] and summary[0]["answers"] == 2
    table = compare.side_by_side(base + trained, "P2A")
    assert len(table) == 2 and set(table[0]) == {"instruction", "base", "trained"}
    assert table[0]["base"].startswith("[")
    fig = plot_policy_scores(summary, ["P2A"])
    assert fig.axes
    by = {"base": {"mean tokens": 10.0}, "trained": {"mean tokens": 6.0}}
    assert compare.length_change([{"label": k, **v} for k, v in by.items()], "base", "trained") == pytest.approx(-0.4)


def test_general_score_fn_is_the_general_raters_reward_and_keeps_other_columns():
    assert compare.GENERAL_WEIGHTS == {"P2B": 0.5, "P3A": 0.5}     # the rater behind the general reward model
    scorer = compare.general_score_fn(toy_length_score_fn)
    ins, resp = ["q", "q"], ["short", "a much longer answer with you and more words!"]
    out = scorer(["general", "P2A"], ins, resp)
    sides = toy_length_score_fn(["P2B", "P3A"], ins, resp)
    torch.testing.assert_close(out[:, 0], sides @ torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out[:, 1], toy_length_score_fn(["P2A"], ins, resp)[:, 0])
    assert out[0, 0] != out[1, 0]                 # it depends on the response
    assert compare.general_score_fn(toy_length_score_fn)(["P2B"], ins, resp).shape == (2, 1)


def test_shipped_adapter_absent_and_present(tmp_path):
    assert compare.shipped_adapter("P2A", root=tmp_path) is None
    folder = tmp_path / "P2A" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    assert compare.shipped_adapter("P2A", root=tmp_path) is None      # no weights yet
    (folder / "adapter_model.safetensors").write_bytes(b"")
    assert compare.shipped_adapter("P2A", root=tmp_path) == folder
    assert compare.shipped_record(folder) == {}


def test_with_seconds_accumulates_iteration_times():
    rows = compare.with_seconds([{"time/total": 1.5}, {"time/total": 2.0}])
    assert [r["seconds"] for r in rows] == [1.5, 3.5]
    fig = plot_curves({"ours": rows}, key="time/total", x="seconds")
    assert fig.axes[0].lines


# --------------------------------------------------------------------------------------------
# TRL glue
# --------------------------------------------------------------------------------------------


def test_trl_reward_funcs_score_plain_instruction_and_response_once_per_batch():
    calls = []

    def score_fn(codes, instructions, responses):
        calls.append((list(codes), list(instructions), list(responses)))
        return toy_length_score_fn(codes, instructions, responses)

    funcs = trl_baseline.trl_reward_funcs(score_fn, ["P2A", "P2B"])
    assert [f.__name__ for f in funcs] == ["P2A", "P2B"]
    prompts = [[{"role": "user", "content": "Say hi. Be concise."}]] * 2
    completions = [[{"role": "assistant", "content": "hi"}], [{"role": "assistant", "content": "hello there you"}]]
    a = funcs[0](prompts=prompts, completions=completions, instruction=["Say hi.", "Say hi."], trainer_state=None)
    b = funcs[1](prompts=prompts, completions=completions, instruction=["Say hi.", "Say hi."], trainer_state=None)
    assert len(calls) == 1                        # one scorer pass serves both columns
    assert calls[0][1] == ["Say hi.", "Say hi."] and calls[0][2] == ["hi", "hello there you"]
    assert a == pytest.approx([-1 / 50, -3 / 50]) and b == pytest.approx([1 / 50, 3 / 50])
    assert a[0] != a[1]                           # the reward depends on the response
    # without an instruction column: the last user message
    c = funcs[0](prompts=prompts, completions=["hi", "hello there you"])
    assert calls[-1][1] == ["Say hi. Be concise."] * 2 and c == pytest.approx(a)
    with pytest.raises(ValueError, match="at least one"):
        trl_baseline.trl_reward_funcs(score_fn, [])


def test_trl_config_matches_the_budget_and_rejects_bad_batches():
    cfg = trl_baseline.trl_config("rloo", steps=3, batch_size=4, num_generations=2, max_new_tokens=12,
                                  reward_weights=[1.0, 0.5])
    assert (cfg.max_steps, cfg.per_device_train_batch_size, cfg.num_generations) == (3, 4, 2)
    assert cfg.max_completion_length == 12 and cfg.reward_weights == [1.0, 0.5]
    assert not cfg.bf16 and not cfg.gradient_checkpointing and cfg.disable_dropout
    assert trl_baseline.trl_config("grpo", batch_size=2).num_generations == 2
    with pytest.raises(ValueError, match="multiple of num_generations"):
        trl_baseline.trl_config("rloo", batch_size=3, num_generations=2)
    with pytest.raises(ValueError, match="Unknown TRL trainer"):
        trl_baseline.trl_config("ppo")


@pytest.mark.parametrize("kind", ["rloo", "grpo"])
def test_train_trl_runs_and_logs_reward_per_step(kind, tmp_path):
    run = trl_baseline.train_trl(kind, tiny_llama(), tiny_tokenizer(), PROMPTS, toy_length_score_fn, ["P2A", "P2B"],
                                 weights=[1.0, 0.0], steps=2, batch_size=2, num_generations=2, max_new_tokens=6,
                                 output_dir=str(tmp_path))
    assert [h["step"] for h in run.history] == [1, 2]
    assert all(isinstance(h["reward"], float) for h in run.history) and run.seconds > 0
    assert run.history[-1]["seconds"] == pytest.approx(run.seconds)
    assert hasattr(run.model, "disable_adapter")          # a PeftModel: the reference is the adapter switched off
    assert trl_baseline.reward_per_second(0.0, 1.0, 4.0) == 0.25
    with pytest.raises(ValueError):
        trl_baseline.reward_per_second(0.0, 1.0, 0.0)


# --------------------------------------------------------------------------------------------
# Exercises of notebooks 04 and 05
# --------------------------------------------------------------------------------------------


def test_check_token_rewards_accepts_the_library_and_explains_mistakes(capsys):
    from rlphf_lab.rl import ppo
    from rlphf_lab.exercises import check_token_rewards

    assert check_token_rewards(ppo.compute_rewards)

    def score_at_position_T_minus_1(scores, logprobs, ref, mask, beta):
        r = -beta * (logprobs - ref)
        r[:, -1] += scores
        return r

    assert not check_token_rewards(score_at_position_T_minus_1)
    assert "padding" in capsys.readouterr().out
    assert not check_token_rewards(lambda *a: 1 / 0)


def test_check_prompted_morl_reward(capsys):
    from rlphf_lab.exercises import check_prompted_morl_reward

    assert check_prompted_morl_reward(lambda f, codes, ins, resp: f(codes, ins, resp).mean(dim=1))
    assert not check_prompted_morl_reward(lambda f, codes, ins, resp: f(codes, ins, [""] * len(resp)).mean(dim=1))
    assert "does not look at the response" in capsys.readouterr().out
    assert not check_prompted_morl_reward(lambda f, codes, ins, resp: f(codes, ins, resp).sum(dim=1))


@pytest.mark.model
def test_a_shipped_adapter_says_which_machine_its_seconds_were_spent_on(tmp_path):
    """Notebook 05's table mixes runs from a 2-core CPU and a shared GPU: each row names its machine."""
    path = compare.shipped_adapter("P2A")
    if path is None:
        pytest.skip("no shipped P2A adapter")
    record = compare.shipped_record(path)
    policy = compare.train_or_load("P2A", None, PPOConfig(output_dir=str(tmp_path)), [])
    assert policy.source == f"shipped: {path}" and policy.seconds == record["wall_time_s"]
    assert policy.trained_on == f"{record['machine']}, {record['device']}" != "this machine"
