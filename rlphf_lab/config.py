"""One place for the lab's settings: quick mode, device and dtype, cache folder, seeding.

Environment variables (all optional):

    RLPHF_SIZE=class     the size notebooks and commands run at: quick (CI, seconds), class (a notebook in
                         at most 15 minutes on a 2-core laptop, its effect visible; what notebooks default
                         to), full (the shipped artifacts; what commands default to). Same code at every size.
    RLPHF_QUICK=1        the same as RLPHF_SIZE=quick (CI sets it)
    RLPHF_LAB_CACHE=DIR  where the converted model and other caches live (default ~/.cache/rlphf_lab)
    RLPHF_DEVICE=cpu     force a device ("cpu", "cuda", "cuda:1", ...)
    RLPHF_DTYPE=float32  force a dtype ("float32", "bfloat16", "float16")
"""
from __future__ import annotations

import os
import random
from pathlib import Path

# The lab never talks to the Hugging Face Hub at run time: everything is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
ADAPTERS_DIR = DATA_DIR / "adapters"      # the shipped policies: data/adapters/<name>/adapter (PEFT folders)
RUNS_DIR = REPO_ROOT / "runs"             # git-ignored: where every command writes by default
MY_ADAPTERS_DIR = RUNS_DIR / "policies"   # your own: `rlphf-lab train-policy` / `train-dpo` write <name>/adapter here

_TRUE = {"1", "true", "yes", "on"}


SIZES = ("quick", "class", "full")
_NOTEBOOK_SIZE: str | None = None      # set by use_size() in a notebook's first cell


def size() -> str:
    """The size to run at: "quick", "class" or "full".

    RLPHF_SIZE if set, else "quick" when RLPHF_QUICK is set, else the size a notebook chose with
    `use_size` (class), else "full" (the commands' default: they build the shipped artifacts).
    """
    name = os.environ.get("RLPHF_SIZE", "").strip().lower()
    quick = os.environ.get("RLPHF_QUICK", "").strip().lower() in _TRUE
    if name:
        if name not in SIZES:
            raise ValueError(f"RLPHF_SIZE={name!r} is not a size; use one of {', '.join(SIZES)}.")
        if quick and name != "quick":
            raise ValueError(f"RLPHF_QUICK=1 and RLPHF_SIZE={name} disagree; unset one of them.")
        return name
    if quick:
        return "quick"
    return _NOTEBOOK_SIZE or "full"


def use_size(default: str = "class") -> str:
    """A notebook's first cell: run at `default` (a class period) unless RLPHF_SIZE / RLPHF_QUICK say
    otherwise, for this notebook and every library call in its kernel. Returns the size used."""
    global _NOTEBOOK_SIZE
    if default not in SIZES:
        raise ValueError(f"Unknown size {default!r}; use one of {', '.join(SIZES)}.")
    _NOTEBOOK_SIZE = default
    return size()


def is_quick() -> bool:
    """True at the quick size (RLPHF_QUICK=1 or RLPHF_SIZE=quick): the smallest settings, for CI."""
    return size() == "quick"


_FULL = object()


def pick(quick, full, in_class=_FULL):
    """The value for the size we run at: `n_prompts = pick(4, 64, in_class=16)`.

    in_class: the class size's value; left out, the class size uses `full`.
    """
    name = size()
    if name == "quick":
        return quick
    if name == "class" and in_class is not _FULL:
        return in_class
    return full


def cache_dir() -> Path:
    """Root folder for caches (converted model, features). Override with RLPHF_LAB_CACHE."""
    root = os.environ.get("RLPHF_LAB_CACHE") or Path.home() / ".cache" / "rlphf_lab"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 instructions (AVX512-BF16 or AMX); then bf16 is 2-3x faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: be safe
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def bf16_autocast_pays(device: torch.device | str) -> bool:
    """Whether training with bf16 autocast (TRL's bf16=True) is faster than fp32 on this device: on CUDA
    with bf16 support and on CPUs with native bf16. Without it (AVX2 only) bf16 is emulated and a
    forward and backward of the 135M model took 15x longer than in fp32 here."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_supports_bf16()


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def default_device(device: str | None = None) -> torch.device:
    """CUDA when present, else CPU; `device` or RLPHF_DEVICE overrides ("cpu", "cuda", "cuda:1", "mps").

    An unknown device, or a GPU that this machine does not have, is a ValueError that says what is there.
    """
    device = device or os.environ.get("RLPHF_DEVICE")
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}; devices on this machine: {', '.join(here)}.") from None
    if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"Device {device!r} is not on this machine (devices here: {', '.join(here)}); "
                         f"use --device cpu, or leave it out to pick CUDA when present.")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Device 'mps' (Apple GPU) is not available here; devices here: {', '.join(here)}.")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Device {device!r} is not supported by the lab; use one of {', '.join(here)}.")
    return chosen


def default_dtype(device: torch.device | str | None = None, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """bf16 on CUDA and on CPUs with native bf16, fp32 otherwise; `dtype` or RLPHF_DTYPE overrides."""
    dtype = dtype or os.environ.get("RLPHF_DTYPE")
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))}.")
        return _DTYPES[dtype]
    device = default_device(device if device is None else str(device))
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a run on CPU repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


LIBRARIES = ("transformers", "peft", "trl", "accelerate", "datasets", "torch")


def quiet_library_warnings() -> None:
    """Hide the libraries' deprecation notices (FutureWarning, DeprecationWarning from transformers,
    PEFT, TRL, ...), which a student cannot act on and which paint notebook cells red. The lab's own
    warnings, and every other warning, still show. `import rlphf_lab` calls it."""
    import warnings

    for library in LIBRARIES:
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=rf"{library}(\..*)?$")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing")   # transformers 5 about PEFT models
