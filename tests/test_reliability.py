"""Nothing lost, nothing silent (issue 17): every probe of a hostile but realistic user, as a test.

Damaged adapters, checkpoints and caches end in one clear error naming the file and the fix;
a failed load leaves the model as it was; training never replaces finished work unless told;
the CLI checks every option before a model loads and answers with one line `error: ...`.
Everything runs on the tiny random Llama (tests/tiny_models.py) or on no model at all.
"""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlphf_lab import soups
from tiny_models import tiny_llama, tiny_tokenizer

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")]

# --------------------------------------------------------------------------------------------
# Adapters: every damaged file is a clear error, and a failed load leaves the model as it was
# --------------------------------------------------------------------------------------------

def _truncate(file):
    file.write_bytes(file.read_bytes()[:100])


def _random_bytes(file):
    file.write_bytes(bytes(range(256)) * 8)


def _empty(file):
    file.write_bytes(b"")


def _nan(file):
    tensors = load_file(file)
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, file)


def _rename_keys(file):
    save_file({k.replace("lora_A", "lora_X"): v for k, v in load_file(file).items()}, file)


def _bad_json(folder):
    (folder / "adapter_config.json").write_text('{"r": 16, "lora_alpha": ')


def _wrong_rank(folder):
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))


def _no_weights(folder):
    (folder / "adapter_model.safetensors").unlink()


DAMAGE = {   # name: (what it does to the folder, what the error must say)
    "truncated weights": (lambda d: _truncate(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "random bytes": (lambda d: _random_bytes(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "empty weights file": (lambda d: _empty(d / "adapter_model.safetensors"), r"adapter_model.safetensors cannot be read"),
    "invalid JSON config": (_bad_json, r"adapter_config.json is not valid JSON"),
    "config rank differs from weights": (_wrong_rank, r"has shape \(16, 32\), but r=8"),
    "missing weights file": (_no_weights, r"has no adapter_model.safetensors"),
    "NaN weights": (lambda d: _nan(d / "adapter_model.safetensors"), r"NaN or inf"),
    "renamed weight keys": (lambda d: _rename_keys(d / "adapter_model.safetensors"), r"missing .* unexpected"),
}


@pytest.fixture(scope="module")
def good_adapters(tmp_path_factory):
    return soups.random_lora_adapters(tiny_llama(), ["P1A", "P2A"], tmp_path_factory.mktemp("good"), r=16, std=0.1)


def _damaged_copy(good, tmp_path, damage):
    folder = tmp_path / "P2A"
    shutil.copytree(good["P2A"], folder)
    DAMAGE[damage][0](folder)
    return folder


def _model_state(model):
    """Everything a failed load must not change: parameters, module types, adapters, flags."""
    return ({n: p.detach().clone() for n, p in model.named_parameters()},
            {n: type(m).__name__ for n, m in model.named_modules()},
            soups.adapter_names(model), {n: p.requires_grad for n, p in model.named_parameters()},
            sorted(vars(model)))


def _assert_same_state(before, after):
    params_a, types_a, *rest_a = before
    params_b, types_b, *rest_b = after
    assert types_a == types_b and rest_a == rest_b
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        assert torch.equal(params_a[name], params_b[name]), name


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_adapter_is_a_clear_error_naming_its_file(tmp_path, good_adapters, damage):
    folder = _damaged_copy(good_adapters, tmp_path, damage)
    model = tiny_llama()
    with pytest.raises(ValueError, match=DAMAGE[damage][1]) as err:
        soups.load_adapters(model, {"P2A": folder})
    message = str(err.value)
    assert message.startswith("Adapter P2A: ") and str(folder) in message
    assert "retrain it" in message and "git checkout" in message            # ... and how to fix it
    assert soups.adapter_names(model) == []


@pytest.mark.parametrize("damage", ["truncated weights", "renamed weight keys", "NaN weights"])
@pytest.mark.parametrize("start", ["base model", "model with an adapter"])
def test_a_failed_load_leaves_the_model_exactly_as_it_was(tmp_path, good_adapters, damage, start):
    model = tiny_llama()
    if start == "model with an adapter":
        model = soups.load_adapters(model, {"P1A": good_adapters["P1A"]})
    before = _model_state(model)
    bad = _damaged_copy(good_adapters, tmp_path, damage)
    name = "P1B" if start == "model with an adapter" else "P1A"
    with pytest.raises(ValueError, match="Adapter P2A"):
        soups.load_adapters(model, {name: good_adapters["P1A"], "P2A": bad})    # a good one and a bad one
    _assert_same_state(before, _model_state(model))
    again = soups.load_adapters(model, {name: good_adapters["P1A"], "P2A": good_adapters["P2A"]})   # a retry works
    assert soups.adapter_names(again)[-2:] == [name, "P2A"]


def test_a_failure_inside_peft_is_rolled_back_too(good_adapters, monkeypatch):
    """Checks cannot foresee everything: if PEFT itself fails half way, the LoRA layers it already
    put into the base model come out again."""
    from peft import PeftModel

    model = tiny_llama()
    before = _model_state(model)

    def fail(self, *args, **kwargs):
        raise RuntimeError("disk vanished")
    monkeypatch.setattr(PeftModel, "load_adapter", fail)
    with pytest.raises(RuntimeError, match="disk vanished"):
        soups.load_adapters(model, good_adapters)          # the first adapter loads, the second fails
    _assert_same_state(before, _model_state(model))
    monkeypatch.undo()
    soups.load_adapters(model, good_adapters)


def test_load_soup_names_the_adapter_that_fails(tmp_path, good_adapters):
    for code in ("P1A", "P2A"):
        shutil.copytree(good_adapters[code], tmp_path / code / "adapter")
    _truncate(tmp_path / "P2A" / "adapter" / "adapter_model.safetensors")
    model = tiny_llama()
    with pytest.raises(ValueError, match=r"Adapter P2A: .*P2A/adapter/adapter_model.safetensors cannot be read"):
        soups.load_soup(model, tiny_tokenizer(), ["P1A", "P2A"], root=tmp_path, verbose=False)
    assert soups.adapter_names(model) == []


def test_damaged_random_stand_ins_in_the_cache_are_made_again(tmp_path):
    model, _, source = soups.load_soup(tiny_llama(), tiny_tokenizer(), ["P1A"], root=tmp_path / "none",
                                       fallback_dir=tmp_path / "random", verbose=False)
    _truncate(tmp_path / "random" / "P1A" / "adapter_model.safetensors")
    again, _, _ = soups.load_soup(tiny_llama(), tiny_tokenizer(), ["P1A"], root=tmp_path / "none",
                                  fallback_dir=tmp_path / "random", verbose=False)
    assert soups.adapter_names(again) == ["P1A"]


def test_huge_soup_weights_do_not_overflow_into_the_base_model():
    weights = soups.check_weights({"P1A": 1e308, "P2A": 1e308}, ["P1A", "P2A"])
    assert weights == {"P1A": 0.5, "P2A": 0.5}
    assert soups.check_weights({"P1A": 1e308, "P2A": 0.0}, ["P1A", "P2A"]) == {"P1A": 1.0, "P2A": 0.0}


# --------------------------------------------------------------------------------------------
# Training never replaces finished work; a resume checks its checkpoint
# --------------------------------------------------------------------------------------------

PROMPTS = ["Say hi.", "Name a fruit.", "Why is the sky blue?", "Count to three."]
TINY = dict(batch_size=2, mini_batch_size=1, ppo_epochs=1, max_new_tokens=6, learning_rate=1e-2, missing_eos_penalty=None)


def _trainer(out, **overrides):
    from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, toy_length_score_fn

    config = PPOConfig(output_dir=str(out), **{"iterations": 2, **TINY, **overrides})
    return PPOTrainer(config, tiny_llama(), tiny_tokenizer(), PROMPTS,
                      **personalized_soups("P2A", toy_length_score_fn).trainer_kwargs())


def _hashes(folder):
    """sha256 of every file under folder: what "nothing was changed" means."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _weights(folder):
    return {**load_file(Path(folder) / "adapter" / "adapter_model.safetensors"),
            **load_file(Path(folder) / "adapter" / "value_head.safetensors")}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-iteration run with checkpoints at iterations 1 and 2."""
    out = tmp_path_factory.mktemp("finished")
    _trainer(out, save_every=1).train(command="first")
    return out


def _copy(run, tmp_path, checkpoints=True):
    shutil.copytree(run, tmp_path / "run", ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    return tmp_path / "run"


def test_a_fresh_run_into_a_finished_folder_refuses_and_changes_nothing(tmp_path, finished_run):
    run = _copy(finished_run, tmp_path)
    before = _hashes(run)
    with pytest.raises(FileExistsError, match=r"already holds a training run \(adapter/, adapter.provenance.json, "
                                              r"2 checkpoints, metrics.csv \(2 iterations\)\).*--resume.*--overwrite"):
        _trainer(run, iterations=1).train()
    assert _hashes(run) == before


def test_resume_into_a_finished_folder_without_checkpoints_refuses(tmp_path, finished_run):
    """The shipped adapters come without checkpoints: `--resume --out data/adapters/P2A` on a fresh
    clone must not start over on top of them."""
    run = _copy(finished_run, tmp_path, checkpoints=False)
    before = _hashes(run)
    with pytest.raises(FileExistsError, match="finished run .* but no checkpoint to resume from"):
        _trainer(run, iterations=1).train(resume=True)
    assert _hashes(run) == before


def test_overwrite_keeps_the_old_run_until_the_new_one_is_complete(tmp_path, finished_run):
    run = _copy(finished_run, tmp_path)
    old = _hashes(run)

    def stop(metrics):
        if metrics["iteration"] == 2:            # after the new run's first checkpoint
            raise KeyboardInterrupt
    trainer = _trainer(run, seed=1, save_every=1)
    trainer.callback = stop
    with pytest.raises(KeyboardInterrupt):
        trainer.train(overwrite=True)
    # interrupted: the old adapter and its record are untouched, its checkpoints and metrics wait in replaced/
    for name in ("adapter/adapter_model.safetensors", "adapter/value_head.safetensors", "adapter.provenance.json"):
        assert _hashes(run)[name] == old[name]
    assert _hashes(run / "replaced")["metrics.csv"] == old["metrics.csv"]
    assert (run / "replaced" / "checkpoints" / "iteration-00002").is_dir()
    with pytest.raises(FileExistsError, match="--overwrite"):     # a fresh run needs --overwrite again
        _trainer(run, seed=1, save_every=1).train()
    _trainer(run, seed=1, save_every=1).train(resume=True)      # the new run finishes ...
    assert not (run / "replaced").exists()                      # ... and only then is the old one gone
    assert _hashes(run)["adapter/adapter_model.safetensors"] != old["adapter/adapter_model.safetensors"]
    assert json.loads((run / "adapter.provenance.json").read_text())["seed"] == 1


@pytest.mark.parametrize("change, named", [
    (dict(seed=7, learning_rate=1e-3), ["seed: 0 in the checkpoint, 7 now", "learning_rate: 0.01 in the checkpoint, 0.001 now"]),
    (dict(batch_size=4, mini_batch_size=2), ["batch_size: 2", "mini_batch_size: 1"]),
    (dict(lora_r=8), ["lora_r: 16 in the checkpoint, 8 now"]),
    (dict(cliprange=0.1), ["cliprange: 0.2 in the checkpoint, 0.1 now"]),      # any field, not a list of favourites
    (dict(horizon=5), ["horizon: 1 in the checkpoint, 5 now"]),
])
def test_resume_refuses_a_checkpoint_with_other_settings_and_names_them(tmp_path, finished_run, change, named):
    run = _copy(finished_run, tmp_path)
    before = _hashes(run)
    with pytest.raises(ValueError, match="Cannot resume .*iteration-00002: it was trained with other settings") as err:
        _trainer(run, iterations=3, **change).train(resume=True)
    for text in named:
        assert text in str(err.value)
    assert _hashes(run) == before


def test_resume_refuses_another_objective(tmp_path, finished_run):
    from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, toy_length_score_fn

    run = _copy(finished_run, tmp_path)
    trainer = PPOTrainer(PPOConfig(output_dir=str(run), iterations=3, **TINY), tiny_llama(), tiny_tokenizer(), PROMPTS,
                         **personalized_soups("P2B", toy_length_score_fn).trainer_kwargs())
    with pytest.raises(ValueError, match=r"reward_names: \['P2A'\] in the checkpoint, \['P2B'\] now"):
        trainer.train(resume=True)
    with pytest.raises(ValueError, match="prompts: '4 prompts, sha256 .*' in the checkpoint, '3 prompts"):
        PPOTrainer(PPOConfig(output_dir=str(run), iterations=3, **TINY), tiny_llama(), tiny_tokenizer(), PROMPTS[:3],
                   **personalized_soups("P2A", toy_length_score_fn).trainer_kwargs()).train(resume=True)


def test_a_config_field_the_checkpoint_does_not_know_is_compared_at_its_default(tmp_path, finished_run):
    """A field added to PPOConfig later is checked without the resume code naming it: a checkpoint
    written before the field existed ran with its default."""
    run = _copy(finished_run, tmp_path)
    state_file = run / "checkpoints" / "iteration-00002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["settings"]["vf_coef"], state["config"]["vf_coef"]           # as if vf_coef were new
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="vf_coef: 0.1 in the checkpoint, 0.5 now"):
        _trainer(run, iterations=3, vf_coef=0.5).train(resume=True)
    _trainer(run, iterations=3).train(resume=True)                         # the default: fine


def test_a_checkpoint_with_the_old_setting_names_is_checked_under_the_new_ones(tmp_path, finished_run):
    """Checkpoints written before PPOConfig took TRL's names (target_kl -> target, adaptive_kl ->
    adap_kl_ctrl) still resume, and still refuse another KL target."""
    run = _copy(finished_run, tmp_path)
    state_file = run / "checkpoints" / "iteration-00002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    for old, new in (("target_kl", "target"), ("adaptive_kl", "adap_kl_ctrl")):
        state["settings"][old] = state["settings"].pop(new)
    state["settings"]["target_kl"] = 3.0                       # that old run aimed at 3 nats
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="target: 3.0 in the checkpoint, 6.0 now"):
        _trainer(run, iterations=3).train(resume=True)
    _trainer(run, iterations=3, target=3.0).train(resume=True)

def test_resume_may_extend_a_run_and_records_every_command(tmp_path, finished_run):
    run = _copy(finished_run, tmp_path)
    with pytest.raises(ValueError, match="it has 2 iterations done already; pass iterations >= 2"):
        _trainer(run, iterations=1).train(resume=True)
    history = _trainer(run, iterations=3, save_every=5).train(resume=True, command="second")
    assert [m["iteration"] for m in history] == [3]
    record = json.loads((run / "adapter.provenance.json").read_text())
    assert record["iterations"] == 3 and record["command"] == "second"
    assert record["runs"] == [{"command": "first", "iterations": [0, 2]}, {"command": "second", "iterations": [2, 3]}]
    # the same as 3 iterations in one go
    _trainer(tmp_path / "whole", iterations=3).train()
    _assert_same_weights(run, tmp_path / "whole")


def test_resume_of_a_finished_run_does_nothing(tmp_path, finished_run, capsys):
    run = _copy(finished_run, tmp_path)
    before = _hashes(run)
    assert _trainer(run).train(resume=True) == []
    assert "already finished 2 iterations; nothing to do" in capsys.readouterr().err
    assert _hashes(run) == before


@pytest.mark.parametrize("damage", ["optimizer.pt", "trainer_state.json", "adapter/adapter_model.safetensors",
                                    "adapter/value_head.safetensors", "rng_state_0.pt"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, finished_run, damage, capsys):
    run = _copy(finished_run, tmp_path)
    _truncate(run / "checkpoints" / "iteration-00002" / damage)
    history = _trainer(run).train(resume=True)
    err = capsys.readouterr().err
    assert f"iteration-00002 cannot be used" in err and damage.split("/")[-1] in err
    assert "resuming from iteration-00001 instead" in err
    assert [m["iteration"] for m in history] == [2]                 # iteration 2 was done again ...
    _assert_same_weights(run, finished_run)                         # ... exactly as the first time


def test_no_usable_checkpoint_is_a_clear_error(tmp_path, finished_run):
    run = _copy(finished_run, tmp_path)
    for folder in ("iteration-00001", "iteration-00002"):
        _truncate(run / "checkpoints" / folder / "optimizer.pt")
    with pytest.raises(ValueError, match=r"No usable checkpoint in .*optimizer.pt cannot be read.*--overwrite"):
        _trainer(run).train(resume=True)


def test_half_written_checkpoints_and_adapters_are_ignored(tmp_path, finished_run):
    """What an interrupted save leaves (`*.partial`) never passes for a checkpoint or an adapter."""
    from rlphf_lab.rl import latest_checkpoint

    run = _copy(finished_run, tmp_path)
    shutil.copytree(run / "checkpoints" / "iteration-00002", run / "checkpoints" / "iteration-00009.partial")
    (run / "adapter.partial").mkdir()
    assert latest_checkpoint(run).name == "iteration-00002"
    _trainer(run, iterations=3).train(resume=True)
    assert not (run / "adapter.partial").exists() and latest_checkpoint(run).name == "iteration-00003"


def test_iterations_below_one_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1 iteration"):
        _trainer(tmp_path, iterations=0, horizon=10).train()
    assert not (tmp_path / "adapter").exists()


# --------------------------------------------------------------------------------------------
# The CLI: every option checked before a model loads; one line `error: ...`, exit 2
# --------------------------------------------------------------------------------------------

def _run(argv, capsys):
    from rlphf_lab.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def no_model(monkeypatch):
    """Checks must come before any model loads: loading one fails the test."""
    import rlphf_lab.models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")
    monkeypatch.setattr(rlphf_lab.models, "load_policy", refuse)


BAD_OPTIONS = [   # argv, what the one line must name (the probes of issue 17)
    (["train-policy", "--preference", "P2A", "--iterations", "0"], "--iterations: must be a whole number >= 1, got 0"),
    (["train-policy", "--preference", "P2A", "--iterations", "-1"], "--iterations: must be a whole number >= 1, got -1"),
    (["train-policy", "--preference", "P2A", "--batch-size", "0"], "--batch-size: must be a whole number >= 1, got 0"),
    (["train-policy", "--preference", "P2A", "--batch-size", "-2"], "--batch-size: must be a whole number >= 1, got -2"),
    (["train-policy", "--preference", "P2A", "--max-new-tokens", "0"], "--max-new-tokens: must be a whole number >= 1"),
    (["train-policy", "--preference", "P2A", "--ppo-epochs", "0"], "--ppo-epochs: must be a whole number >= 1, got 0"),
    (["train-policy", "--preference", "P2A", "--learning-rate", "nan"], "--learning-rate: must be a finite number > 0"),
    (["train-policy", "--preference", "P2A", "--learning-rate", "0"], "--learning-rate: must be a finite number > 0"),
    (["train-policy", "--preference", "P2A", "--kl-target", "-1"], "--kl-target/--target-kl: must be a finite number > 0"),
    (["train-policy", "--preference", "P2A", "--kl-horizon", "0"], "--kl-horizon: must be a whole number >= 1"),
    (["train-policy", "--preference", "P2A", "--missing-eos-penalty", "inf"], "--missing-eos-penalty: must be a finite"),
    (["train-policy", "--preference", "P2A", "--eval-every", "-1"], "--eval-every: must be a whole number >= 0"),
    (["train-policy", "--preference", "P2A", "--save-every", "-1"], "--save-every: must be a whole number >= 0"),
    (["train-policy", "--preference", "P2A", "--limit", "0"], "--limit: must be a whole number >= 1"),
    (["train-policy", "--preference", "P2A", "--seed", "-3"], "--seed: must be a whole number >= 0"),
    (["train-policy", "--preference", "P2A", "--batch-size", "4", "--mini-batch-size", "8"], "--mini-batch-size 8 is larger"),
    (["train-policy", "--morlaif", "P1A,P2A", "--weights", "-1", "-1"], "--weights: must be a finite number >= 0, got -1"),
    (["train-policy", "--morlaif", "P1A,P2A", "--weights", "0", "0"], "at least one weight > 0"),
    (["train-policy", "--morlaif", "P1A,P2A", "--weights", "1"], "1 weights for 2 rewards"),
    (["train-policy", "--preference", "P2A", "--weights", "1"], "--weights are MORLAIF's weights"),
    (["train-policy", "--preference", "P9Z"], "Unknown preference code 'P9Z'"),
    (["train-policy", "--prompted-morl", "--scalarizer", "best"], "Unknown scalarizer 'best'"),
    (["train-policy", "--preference", "P2A", "--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    (["generate-candidates", "--limit", "-1"], "--limit: must be a whole number >= 1, got -1"),
    (["generate-candidates", "--batch-size", "0"], "--batch-size: must be a whole number >= 1"),
    (["label-pairs", "--pairs-per-prompt", "0"], "--pairs-per-prompt: must be a whole number >= 1 and <= 21, got 0"),
    (["label-pairs", "--temperature", "-0.5"], "--temperature: must be a finite number >= 0"),
    (["label-pairs", "--sides", "P1A,X"], "Unknown preference code 'X'"),
    (["label-raters", "--n-raters", "0"], "--n-raters: must be a whole number >= 1, got 0"),
    (["label-raters", "--disagreement", "foo"], "--disagreement: must be low or high or a finite number >= 0, got 'foo'"),
    (["label-raters", "--disagreement", "-1"], "--disagreement: must be low or high"),
    (["judge-agreement", "--n", "-1"], "--n: must be a whole number >= 1, got -1"),
    (["judge-agreement", "--batch-size", "0"], "--batch-size: must be a whole number >= 1, got 0"),
    (["train-rewards", "--epochs", "-1"], "--epochs: must be a whole number >= 1, got -1"),
    (["train-rewards", "--epochs", "0"], "--epochs: must be a whole number >= 1, got 0"),
    (["train-sft", "--epochs", "0"], "--epochs: must be a finite number > 0, got 0"),
    (["train-sft", "--batch-size", "0"], "--batch-size: must be a whole number >= 1"),
    (["train-dpo", "--preference", "P9Z"], "Unknown preference code 'P9Z'"),
    (["train-dpo", "--preference", "P2A", "--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    (["train-dpo", "--preference", "P2A", "--beta", "0"], "--beta: must be a finite number > 0, got 0"),
    (["train-dpo", "--preference", "P2A", "--hack-share", "2"], "--hack-share: must be a share between 0 and 1"),
    (["train-dpo", "--preference", "P2A", "--min-gap", "-1"], "--min-gap: must be a finite number >= 0"),
    (["train-dpo", "--preference", "P2A", "--candidates", "/nope.jsonl", "--out", "{tmp}/dpo"],
     "--candidates /nope.jsonl: no such file"),
    (["train-dpo", "--preference", "P2A", "--out", "{tmp}/file.txt"], "is a file, not a folder"),
    (["evaluate", "--add", "--methods", "dpo-soup", "--out", "{tmp}/none"], "run `rlphf-lab evaluate --out"),
    (["evaluate", "--limit", "0"], "--limit: must be a whole number >= 1, got 0"),
    (["evaluate", "--adapters", "/nonexistent"], "--adapters /nonexistent: no such folder"),
    (["evaluate", "--ai-judge", "-5"], "--ai-judge: must be a whole number >= 0"),
    (["generate", "hi", "--max-new-tokens", "0"], "--max-new-tokens: must be a whole number >= 1, got 0"),
    (["generate", "hi", "--device", "tpu"], "Unknown device 'tpu'"),
    (["generate", "hi", "--dtype", "int8"], "Unknown dtype 'int8'"),
    (["label-pairs", "--candidates", "/nope.jsonl"], "--candidates /nope.jsonl: no such file"),
    (["label-raters", "--candidates", "/nope.jsonl"], "--candidates /nope.jsonl: no such file"),
    (["train-rewards", "--candidates", "/nope.jsonl"], "--candidates /nope.jsonl: no such file"),
    (["train-rewards", "--train-pairs", "/nope.jsonl", "--out", "{tmp}/rm"], "No pair set '/nope.jsonl'"),
    (["judge-agreement", "--pairs", "nope"], "No pair set 'nope'"),
    (["train-sft", "--candidates", "/nope.jsonl", "--out", "{tmp}/sft"], "--candidates /nope.jsonl: no such file"),
    (["generate-candidates", "--out", "{tmp}"], "is a folder; give the file to write"),
    (["label-pairs", "--out", "{tmp}"], "is a folder; give the file to write"),
    (["train-policy", "--preference", "P2A", "--out", "{tmp}/file.txt"], "is a file, not a folder"),
    (["evaluate", "--out", "{tmp}/file.txt"], "is a file, not a folder"),
]


@pytest.mark.parametrize("argv, named", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_before_any_model_loads(tmp_path, capsys, no_model, argv, named):
    (tmp_path / "file.txt").write_text("not a folder")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    _one_line_error(*_run(argv, capsys)[::2], named)


def test_a_gpu_that_is_not_there_is_one_line(capsys, no_model):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _one_line_error(*_run(["generate", "hi", "--device", "cuda"], capsys)[::2], "Device 'cuda' is not on this machine")


def test_debug_shows_the_traceback(capsys, no_model, monkeypatch):
    code, _, err = _run(["--debug", "evaluate", "--adapters", "/nonexistent"], capsys)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")
    code, _, err = _run(["evaluate", "--adapters", "/nonexistent", "--debug"], capsys)
    assert code == 2 and "Traceback" in err
    monkeypatch.setenv("RLPHF_DEBUG", "1")
    code, _, err = _run(["evaluate", "--adapters", "/nonexistent"], capsys)
    assert code == 2 and "Traceback" in err


def test_no_option_uses_or_for_its_default():
    """`args.x or default` turns 0 into the default; the CLI must never do that."""
    import re

    import rlphf_lab.cli

    parser = rlphf_lab.cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices.values()
    flags = {a.dest for p in [parser, *subparsers] for a in p._actions if a.nargs == 0}    # on/off switches
    source = "".join(f.read_text() for f in Path(rlphf_lab.cli.__file__).parent.glob("*.py"))
    used = set(re.findall(r"args\.(\w+) or\b", source))
    assert used <= flags, used - flags


@pytest.fixture
def small_pool(tmp_path):
    """The shipped candidates of 6 prompts (3 train, 3 eval): a fast, real input."""
    from rlphf_lab.data import CANDIDATES_FILE, read_jsonl, write_jsonl

    rows = read_jsonl(CANDIDATES_FILE)
    keep = sorted({r["prompt_id"] for r in rows if r["split"] == "train"})[:3] + \
        sorted({r["prompt_id"] for r in rows if r["split"] == "eval"})[:3]
    return write_jsonl(tmp_path / "pool.jsonl", [r for r in rows if r["prompt_id"] in keep])


def test_default_outputs_are_under_runs_never_data(tmp_path, monkeypatch, capsys, small_pool):
    """label-pairs once replaced the shipped 7,678-line pairs_train.jsonl with 596 lines by default."""
    import rlphf_lab.cli.options as cli
    from rlphf_lab.config import DATA_DIR, REPO_ROOT

    assert cli.RUNS_DIR == REPO_ROOT / "runs" and "runs/" in (REPO_ROOT / ".gitignore").read_text().split()
    monkeypatch.setattr(cli, "RUNS_DIR", tmp_path / "runs")
    shipped = _hashes(DATA_DIR / "feedback")
    for argv in (["label-pairs", "--split", "train", "--temperature", "0.5", "--pairs-per-prompt", "1"],
                 ["label-raters", "--n-raters", "2", "--pairs-per-rater", "3"]):
        code, out, err = _run(argv + ["--candidates", str(small_pool)], capsys)
        assert code == 0, err
    assert (tmp_path / "runs" / "label-pairs" / "pairs_train.jsonl").is_file()
    assert (tmp_path / "runs" / "label-raters" / "raters_low.jsonl").is_file()
    assert _hashes(DATA_DIR / "feedback") == shipped
    for command in ("generate-candidates", "label-pairs", "label-raters", "judge-agreement", "train-rewards",
                    "evaluate", "policies"):
        assert cli.default_out(command).is_relative_to(tmp_path / "runs")


def test_a_command_refuses_to_replace_its_output_unless_overwrite(tmp_path, capsys, small_pool):
    out = tmp_path / "pairs.jsonl"
    argv = ["label-pairs", "--candidates", str(small_pool), "--out", str(out)]
    assert _run(argv, capsys)[0] == 0
    before = _hashes(tmp_path)
    code, _, err = _run(argv + ["--pairs-per-prompt", "1"], capsys)
    _one_line_error(code, err, f"{out} exists already; nothing was changed", "--overwrite")
    assert _hashes(tmp_path) == before                                 # byte for byte
    assert _run(argv + ["--pairs-per-prompt", "1", "--overwrite"], capsys)[0] == 0
    assert _hashes(tmp_path)[out.name] != before[out.name]


def test_rebuilding_the_shipped_data_is_explicit(tmp_path):
    """make data names data/ and --overwrite in every command that replaces a shipped file."""
    from rlphf_lab.config import REPO_ROOT

    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ndata:"):makefile.index("\nartifacts:")]
    commands = [line.strip() for line in recipe.replace("\\\n", " ").splitlines() if "rlphf-lab" in line]
    assert commands
    for line in commands:
        assert "--out data/" in line, line
        assert "--overwrite" in line or "generate-candidates" in line, line      # the pool is continued, not replaced
    assert "evaluate --out data/evaluation --overwrite" in makefile


def test_missing_inputs_are_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    """The messages were good, but came as tracebacks: main() caught only ValueError."""
    import rlphf_lab.data

    monkeypatch.setattr(rlphf_lab.data, "CANDIDATES_FILE", tmp_path / "missing.jsonl")
    for argv in (["label-pairs"], ["label-raters"], ["train-rewards", "--out", str(tmp_path / "rm")],
                 ["train-sft", "--out", str(tmp_path / "sft")]):
        _one_line_error(*_run(argv, capsys)[::2], "missing.jsonl: no such file")


@pytest.fixture
def tiny_policy(monkeypatch):
    """train-policy on the tiny random Llama: the CLI's own code path in a second."""
    import rlphf_lab.models

    monkeypatch.setattr(rlphf_lab.models, "load_policy", lambda **kwargs: (tiny_llama(), tiny_tokenizer()))


def _train_argv(out, *extra):
    return ["train-policy", "--preference", "P2A", "--reward", "toy-length", "--iterations", "3", "--batch-size", "2",
            "--mini-batch-size", "1", "--ppo-epochs", "1", "--max-new-tokens", "6", "--save-every", "1",
            "--out", str(out), *extra]


def test_ctrl_c_names_the_last_checkpoint_and_the_resume_command(tmp_path, capsys, tiny_policy, monkeypatch):
    import shlex

    from rlphf_lab.rl import PPOTrainer

    step = PPOTrainer.step

    def interrupted(self, iteration):
        if iteration == 2:
            raise KeyboardInterrupt
        return step(self, iteration)
    monkeypatch.setattr(PPOTrainer, "step", interrupted)
    code, _, err = _run(_train_argv(tmp_path / "split"), capsys)
    assert code == 130
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and str(tmp_path / "split" / "checkpoints" / "iteration-00002") in lines[0]
    command = lines[0].split("`")[1]
    assert command.startswith("rlphf-lab train-policy") and command.endswith("--resume")
    monkeypatch.setattr(PPOTrainer, "step", step)
    assert _run(shlex.split(command)[1:], capsys)[0] == 0              # the printed command, as it is
    assert _run(_train_argv(tmp_path / "whole"), capsys)[0] == 0
    _assert_same_weights(tmp_path / "split", tmp_path / "whole")
    record = json.loads((tmp_path / "split" / "adapter.provenance.json").read_text())
    assert [run["iterations"] for run in record["runs"]] == [[0, 2], [2, 3]]


def test_cli_resume_with_other_settings_is_refused_and_changes_nothing(tmp_path, capsys, tiny_policy):
    out = tmp_path / "run"
    assert _run(_train_argv(out), capsys)[0] == 0
    before = _hashes(out)
    code, _, err = _run(_train_argv(out, "--resume", "--seed", "7", "--learning-rate", "1e-3"), capsys)
    _one_line_error(code, err, "seed: 0 in the checkpoint, 7 now", "learning_rate: 0.0001 in the checkpoint, 0.001 now")
    code, _, err = _run(_train_argv(out), capsys)                      # a fresh run on top of it
    _one_line_error(code, err, "already holds a training run", "--overwrite")
    assert _hashes(out) == before


def test_cli_resume_on_a_shipped_adapter_without_checkpoints_changes_nothing(tmp_path, capsys, no_model):
    """The probe that replaced the shipped, 46-minute P2A adapter with a 1-iteration run."""
    from rlphf_lab.config import DATA_DIR

    copy = tmp_path / "P2A"
    shutil.copytree(DATA_DIR / "adapters" / "P2A", copy)
    before = _hashes(copy)
    code, _, err = _run(["train-policy", "--preference", "P2A", "--iterations", "1", "--resume", "--out", str(copy)], capsys)
    _one_line_error(code, err, "holds a finished run", "no checkpoint to resume from", "--overwrite")
    assert _hashes(copy) == before


# --------------------------------------------------------------------------------------------
# The library: arguments that used to do something else silently
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1), "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
    (dict(batch_size=0), "batch_size must be a whole number >= 1"),
    (dict(max_new_tokens=0), "max_new_tokens must be a whole number >= 1"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(seed=-1), "seed must be None or a whole number >= 0"),
])
def test_generate_refuses_arguments_it_would_silently_change(kwargs, message):
    from rlphf_lab.models import generate, stream_generate

    model, tok = tiny_llama(), tiny_tokenizer()
    with pytest.raises(ValueError, match=message):
        generate(model, tok, ["Hi"], **kwargs)
    if "batch_size" not in kwargs:
        with pytest.raises(ValueError, match=message):
            next(stream_generate(model, tok, "Hi", **kwargs))
    assert len(generate(model, tok, ["Hi"], max_new_tokens=2, temperature=0)) == 1     # 0 still means greedy


def test_scalarizer_and_combination_inputs():
    from rlphf_lab.preferences import parse_combination
    from rlphf_lab.rewards import uncertainty_weighted

    for lam in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
            uncertainty_weighted(torch.ones(2, 3), lam=lam)
    for spec in (None, 3):
        with pytest.raises(ValueError, match="A preference combination is a string like 'P1A\\+P2B\\+P3A'"):
            parse_combination(spec)


def test_a_damaged_model_cache_says_to_convert_again(tmp_path, monkeypatch):
    """A model.safetensors cut short (a full disk, a killed conversion) names the fix."""
    from rlphf_lab import models

    cached = models.converted_model_dir()
    if not (cached / "config.json").is_file():
        pytest.skip("no converted model in the cache")
    monkeypatch.setenv("RLPHF_LAB_CACHE", str(tmp_path))
    folder = tmp_path / models.MODEL_NAME
    folder.mkdir()
    for file in cached.iterdir():
        if file.name != "model.safetensors":
            shutil.copy(file, folder / file.name)
    (folder / "model.safetensors").write_bytes((cached / "model.safetensors").open("rb").read(4096))
    with pytest.raises(models.ModelNotAvailableError, match=r"cannot be read .*`rlphf-lab fetch-model --force`"):
        models.load_policy(device="cpu")


def test_a_damaged_reward_model_names_its_file(tmp_path):
    from rlphf_lab.config import DATA_DIR
    from rlphf_lab.rewards import load_reward_model

    shutil.copytree(DATA_DIR / "reward_models" / "features" / "P2A", tmp_path / "features" / "P2A")
    folder = tmp_path / "features" / "P2A"
    assert load_reward_model(folder).side == "P2A"
    _truncate(folder / "head.safetensors")
    with pytest.raises(ValueError, match=r"head.safetensors cannot be read.*train-rewards --sides P2A"):
        load_reward_model(folder)
    save_file({"net.0.weight": torch.zeros(3, 3)}, folder / "head.safetensors")
    with pytest.raises(ValueError, match="does not fit feature_dim"):
        load_reward_model(folder)
    (folder / "reward_config.json").write_text("{broken")
    with pytest.raises(ValueError, match="reward_config.json is not valid JSON"):
        load_reward_model(folder)


# --------------------------------------------------------------------------------------------
# The feedback store
# --------------------------------------------------------------------------------------------

def _record(i):
    return {"pair_id": f"pair-{i}", "label": "A", "chosen": f"yes {i}", "rejected": f"no {i}"}


def test_invalid_utf8_in_a_record_is_reported_not_replaced(tmp_path):
    from rlphf_lab.data import FeedbackStore

    path = tmp_path / "labels.jsonl"
    store = FeedbackStore(path)
    store.append(_record(0))
    with open(path, "ab") as f:
        f.write(b'{"pair_id": "pair-1", "chosen": "caf\xe9"}\n')        # latin-1, not UTF-8
    store.append(_record(2))
    with pytest.warns(UserWarning, match="line 2"):
        rows = store.records()
    assert rows == [_record(0), _record(2)] and [n for n, _ in store.problems] == [2]
    assert "utf-8" in store.problems[0][1]


@pytest.mark.parametrize("bad", [[1, 2], "a string", {"score": float("nan")}, {"score": float("inf")},
                                 {"when": object()}])
def test_append_refuses_what_records_could_not_read_back(tmp_path, bad):
    from rlphf_lab.data import FeedbackStore

    store = FeedbackStore(tmp_path / "labels.jsonl")
    store.append(_record(0))
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match="[Nn]othing was written"):
        store.append(bad)
    assert store.path.read_bytes() == before


def test_nan_written_by_hand_is_a_reported_line(tmp_path):
    from rlphf_lab.data import FeedbackStore

    path = tmp_path / "labels.jsonl"
    path.write_text('{"pair_id": "a", "score": NaN}\n' + json.dumps(_record(1)) + "\n")
    with pytest.warns(UserWarning, match="line 1"):
        assert FeedbackStore(path).records() == [_record(1)]


def test_a_new_store_says_so_and_a_mistyped_path_can_be_caught(tmp_path):
    from rlphf_lab.data import FeedbackStore, to_preference_dataset

    store = FeedbackStore(tmp_path / "labels.jsonl")
    assert store.is_new and "new store" in store.describe()
    store.append(_record(0))
    assert not store.is_new and store.describe().startswith("1 records in")
    with pytest.raises(FileNotFoundError, match=r"No feedback store at .*lables.jsonl \(files there: \['labels.jsonl'\]\)"):
        FeedbackStore(tmp_path / "lables.jsonl", must_exist=True)
    with pytest.raises(FileNotFoundError, match="No feedback store"):
        to_preference_dataset(tmp_path / "lables.jsonl")


def test_atomic_writes_keep_the_old_file_until_the_new_one_is_complete(tmp_path, monkeypatch):
    from rlphf_lab import data

    path = data.write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}])

    def broken_rows():
        yield {"a": 2}
        raise RuntimeError("killed half way")
    with pytest.raises(RuntimeError):
        data.write_jsonl(path, broken_rows())
    assert data.read_jsonl(path) == [{"a": 1}]
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "w").write_text("old")
    new = data.partial_path(folder)
    new.mkdir()
    (new / "w").write_text("new")
    data.replace_with(new, folder)
    assert (folder / "w").read_text() == "new" and not new.exists() and not (tmp_path / "adapter.old").exists()


EXISTING_RESULTS = [   # argv (into {out}), the finished result already there
    (["label-pairs", "--out", "{out}/pairs.jsonl"], ["pairs.jsonl"]),
    (["label-raters", "--out", "{out}/raters.jsonl"], ["raters.raters.json"]),
    (["judge-agreement", "--out", "{out}/judge.json"], ["judge.json"]),
    (["train-rewards", "--sides", "P2A", "--out", "{out}"], ["features/P2A/reward_config.json"]),
    (["train-sft", "--out", "{out}"], ["adapter/adapter_config.json"]),
    (["train-dpo", "--preference", "P2A", "--out", "{out}"], ["adapter/adapter_config.json"]),
    (["evaluate", "--out", "{out}"], ["responses.jsonl", "win_rates.csv"]),
    (["evaluate", "--out", "{out}", "--regenerate", "--generate-only"], ["responses.jsonl"]),
    (["train-policy", "--preference", "P2A", "--out", "{out}"], ["adapter/value_head.safetensors",
                                                                 "adapter.provenance.json"]),
]


@pytest.mark.parametrize("argv, existing", EXISTING_RESULTS, ids=[a[0] + " " + " ".join(a[1:2]) for a, _ in EXISTING_RESULTS])
def test_every_command_that_writes_refuses_to_replace_a_finished_result(tmp_path, capsys, no_model, argv, existing):
    for name in existing:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("finished work\n")
    before = _hashes(tmp_path)
    code, _, err = _run([a.replace("{out}", str(tmp_path)) for a in argv], capsys)
    _one_line_error(code, err, "nothing was changed", "--overwrite")
    assert _hashes(tmp_path) == before


def test_generate_candidates_continues_a_pool_but_never_mixes_settings(tmp_path, capsys, monkeypatch):
    import rlphf_lab.models
    from rlphf_lab.data import read_jsonl

    monkeypatch.setattr(rlphf_lab.models, "load_policy", lambda **kwargs: (tiny_llama(), tiny_tokenizer()))
    out = tmp_path / "pool.jsonl"
    argv = ["generate-candidates", "--limit", "1", "--max-new-tokens", "2", "--out", str(out)]
    assert _run(argv, capsys)[0] == 0
    assert _run(argv + ["--limit", "2"], capsys)[0] == 0                      # continued: one more prompt
    rows = read_jsonl(out)
    assert len({r["prompt_id"] for r in rows}) == 2
    before = _hashes(tmp_path)
    code, _, err = _run(argv + ["--seed", "1"], capsys)
    _one_line_error(code, err, "would mix two settings", "--overwrite")
    code, _, err = _run(argv + ["--max-new-tokens", "3"], capsys)
    _one_line_error(code, err, "would mix two settings")
    assert _hashes(tmp_path) == before
    assert _run(argv + ["--seed", "1", "--overwrite"], capsys)[0] == 0       # replaced once the new pool is complete
    assert {r["seed"] for r in read_jsonl(out)} == {1} and not (tmp_path / "pool.jsonl.partial").exists()


def test_the_feedback_widget_says_when_its_store_is_new(tmp_path):
    pytest.importorskip("ipywidgets")
    from rlphf_lab.widgets import FeedbackWidget

    pairs = [{"pair_id": "x", "instruction": "Hi?", "chosen": "a", "rejected": "b", "chosen_id": "a", "rejected_id": "b",
              "preference": "P2A"}]
    widget = FeedbackWidget(pairs, tmp_path / "mine.jsonl", preference="P2A")
    assert "a new file" in widget.progress.value
    widget.choose("A")
    assert "a new file" not in widget.progress.value


# --------------------------------------------------------------------------------------------
# SIGKILL: no acknowledged label is lost; a run killed while it saves resumes exactly
# --------------------------------------------------------------------------------------------

def _killed_when(code: str, marker: str, timeout: float = 120):
    """Run `code` in a fresh Python, SIGKILL it once `marker` has been printed; its stdout lines."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tests = Path(__file__).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    lines, deadline = [], time.time() + timeout
    for line in proc.stdout:
        lines.append(line.strip())
        if marker in line or time.time() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and any(marker in line for line in lines), lines[-5:]
    return lines


def test_sigkill_mid_append_loses_no_acknowledged_record(tmp_path):
    from rlphf_lab.data import FeedbackStore

    path = tmp_path / "labels.jsonl"
    acknowledged = []
    for kill in range(3):
        code = (f"from rlphf_lab.data import FeedbackStore\nstore = FeedbackStore({str(path)!r})\n"
                f"for i in range(10**6):\n    store.append({{'pair_id': 'k{kill}-' + str(i), 'text': 'x' * 5000}})\n"
                f"    print('ok', i, flush=True)\n    if i == 200: print('enough', flush=True)\n")
        lines = _killed_when(code, "enough")
        acknowledged += [f"k{kill}-{line.split()[1]}" for line in lines if line.startswith("ok")]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a record cut off by a kill is reported, not lost silently
        stored = [r["pair_id"] for r in FeedbackStore(path).records()]
    assert set(acknowledged) <= set(stored)
    FeedbackStore(path).append({"pair_id": "after"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert FeedbackStore(path).records()[-1] == {"pair_id": "after"}


def test_sigkill_while_a_checkpoint_is_written_then_resume_equals_one_run(tmp_path):
    """Killed (not an exception: no clean-up runs) as the checkpoint after iteration 3 is being
    written; --resume from the last complete one gives the uninterrupted adapter and metrics."""
    from rlphf_lab.rl import read_metrics

    code = f"""
import sys
from pathlib import Path
import torch
from tiny_models import tiny_llama, tiny_tokenizer
from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, toy_length_score_fn
from rlphf_lab.rl import trainer as T
torch.set_num_threads(1)
config = PPOConfig(output_dir={str(tmp_path / 'split')!r}, iterations=4, save_every=1, **{TINY!r})
t = PPOTrainer(config, tiny_llama(), tiny_tokenizer(), {PROMPTS!r},
               **personalized_soups("P2A", toy_length_score_fn).trainer_kwargs())
save = T.PPOTrainer.save_model
def slow_save(self, path=None):
    done = save(self, path)
    if "iteration-00003" in str(path):       # the checkpoint's adapter is written, the rest is not
        print("saving", flush=True)
        import time; time.sleep(60)          # killed in here: half a checkpoint on disk
    return done
T.PPOTrainer.save_model = slow_save
t.train()
"""
    _killed_when(code, "saving")
    split = tmp_path / "split"
    assert (split / "checkpoints" / "iteration-00003.partial").exists()     # what the kill left behind
    history = _trainer(split, iterations=4, save_every=1).train(resume=True)
    assert [m["iteration"] for m in history] == [3, 4]
    _trainer(tmp_path / "whole", iterations=4, save_every=1).train()
    _assert_same_weights(split, tmp_path / "whole")
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]
    assert strip(read_metrics(split)) == strip(read_metrics(tmp_path / "whole"))


def test_evaluate_add_answers_only_the_new_methods_and_keeps_everything_else(tmp_path, capsys, monkeypatch):
    """`evaluate --add --methods dpo-P2A`: the earlier answers stay byte for byte, the new method's answers
    join them, every table is rebuilt, and the earlier reward-model scores stay in the report."""
    import json

    import rlphf_lab.models
    from rlphf_lab import soups
    from rlphf_lab.data import load_prompts, read_jsonl, write_jsonl

    monkeypatch.setattr(rlphf_lab.models, "load_policy", lambda **kwargs: (tiny_llama(), tiny_tokenizer()))
    adapters, out = tmp_path / "adapters", tmp_path / "eval"
    for name, folder in soups.random_lora_adapters(tiny_llama(), ["dpo-P2A"], tmp_path / "random", r=8).items():
        (adapters / name).mkdir(parents=True)
        shutil.copytree(folder, adapters / name / "adapter")
    prompts = load_prompts("eval", limit=2)
    old = [{"prompt_id": p["id"], "instruction": p["instruction"], "method": m, "combination": "", "response": text}
           for p in prompts for m, text in (("vanilla", "Water boils at 100 degrees."), ("rlhf", "It boils when hot."))]
    out.mkdir()
    write_jsonl(out / "responses.jsonl", old)
    (out / "responses.jsonl.provenance.json").write_text(json.dumps({"seed": 0, "max_new_tokens": 4}))
    (out / "reward_scores.csv").write_text("method,P1A\nrlhf,0.25\n")
    argv = ["evaluate", "--add", "--methods", "dpo-P2A", "--out", str(out), "--adapters", str(adapters)]
    code, _, err = _run(argv, capsys)
    _one_line_error(code, err, "sampled with max_new_tokens 4", "--max-new-tokens 4")
    code, printed, err = _run(argv + ["--max-new-tokens", "4"], capsys)
    assert code == 0, err
    rows = read_jsonl(out / "responses.jsonl")
    assert rows[:len(old)] == old and [r["method"] for r in rows[len(old):]] == ["dpo-P2A"] * 2
    assert "dpo-P2A" in (out / "win_rates_by_side.csv").read_text()
    assert "reward-model score" in (out / "win_rates.md").read_text()
    record = json.loads((out / "responses.jsonl.provenance.json").read_text())
    assert [r["methods"] for r in record["runs"][1:]] == [["dpo-P2A"]]
