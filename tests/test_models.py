"""Integration tests on the real SmolLM2-135M-Instruct (marker: model)."""
import socket
import subprocess
import sys

import pytest
import torch

from rlphf_lab import config, models

pytestmark = pytest.mark.model


def test_pad_token_is_distinct_from_eos_and_padding_is_left(policy):
    model, tok = policy
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.padding_side == "left"
    assert model.config.pad_token_id == tok.pad_token_id
    batch = tok(["hi", "a much longer sentence here"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0, 0] == tok.pad_token_id          # the short one is padded on the left
    assert batch["attention_mask"][0, 0] == 0


def test_dtype_follows_the_one_place_that_decides(policy):
    model, _ = policy
    assert model.dtype == config.default_dtype()
    assert config.default_dtype(dtype="float32") == torch.float32


def test_seeded_generation_repeats_and_differs_across_seeds(policy):
    model, tok = policy
    kw = dict(max_new_tokens=16, batch_size=2)
    prompts = ["Name a fruit.", "Why is the sky blue?"]
    a = models.generate(model, tok, prompts, preference="P2A", seed=3, **kw)
    b = models.generate(model, tok, prompts, preference="P2A", seed=3, **kw)
    c = models.generate(model, tok, prompts, preference="P2A", seed=4, **kw)
    assert a == b
    assert a != c
    assert all(isinstance(x, str) and x for x in a)


def test_stream_matches_itself_and_can_be_stopped(policy):
    model, tok = policy
    pieces = list(models.stream_generate(model, tok, "Name a colour.", max_new_tokens=12, seed=1))
    again = list(models.stream_generate(model, tok, "Name a colour.", max_new_tokens=12, seed=1))
    assert pieces == again and len(pieces) >= 2
    calls = []
    stopped = list(models.stream_generate(model, tok, "Name a colour.", max_new_tokens=12, seed=1,
                                          should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert len(stopped) <= 3


@pytest.mark.parametrize("instruction, preference, seed, temperature", [
    ("Why is the sky blue?", None, 0, 0.7), ("Name three fruits.", "P2A", 7, 0.7), ("Write a haiku about rain.", None, 3, 0)])
def test_stream_and_generate_write_the_same_answer_for_a_seed(policy, one_thread, instruction, preference, seed,
                                                              temperature):
    """One sampler: the widget's stream and a cell's generate give the same text for the same seed."""
    model, tok = policy
    kw = dict(max_new_tokens=40, seed=seed, temperature=temperature)
    streamed = "".join(models.stream_generate(model, tok, instruction, preference, **kw))
    assert streamed.strip() == models.generate(model, tok, [instruction], preference, **kw)[0]


def test_generation_length_mismatch_is_a_clear_error(policy):
    model, tok = policy
    with pytest.raises(ValueError, match="one per instruction"):
        models.generate(model, tok, ["a", "b"], preference=["P2A"])


def test_load_and_generate_with_sockets_blocked(monkeypatch, policy):
    """The lab works with the network unplugged: any socket use fails the test."""
    def no_network(*args, **kwargs):
        raise AssertionError("the lab tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model, tok = models.load_policy()
    assert models.generate(model, tok, ["Say hello."], max_new_tokens=8, seed=0)[0]


def test_cached_load_takes_under_three_seconds():
    """After conversion, loading is a plain safetensors read (measured in a fresh process)."""
    models.convert_model()
    code = ("import time, rlphf_lab.models as m, transformers.models.llama.modeling_llama\n"
            "t = time.perf_counter(); m.load_policy(); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 3.0, f"cached load took {seconds:.2f} s"


def test_missing_model_package_says_what_to_run(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelNotAvailableError, match="make setup"):
        models.find_gguf()


def test_bf16_autocast_only_where_the_cpu_has_native_bf16(monkeypatch):
    """On an AVX2-only CPU bf16 is emulated (a forward and backward took 15x longer than fp32 here): DPO's
    trainer must not turn autocast on there."""
    from rlphf_lab import config

    monkeypatch.setattr(config, "cpu_supports_bf16", lambda: False)
    assert not config.bf16_autocast_pays("cpu")
    monkeypatch.setattr(config, "cpu_supports_bf16", lambda: True)
    assert config.bf16_autocast_pays("cpu")
    assert not config.bf16_autocast_pays("meta")
