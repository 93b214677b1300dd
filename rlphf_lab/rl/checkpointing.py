"""Saving and resuming a PPO run exactly: PPOTrainer's checkpoint methods, kept in their own module.

A checkpoint (output_dir/checkpoints/iteration-N) holds everything a resumed run needs to draw
exactly the numbers an uninterrupted run would have drawn: adapter + value head, optimizer, KL
controller, reward statistics, iteration, the run's settings, and every process's RNG states.
Every file is written under a temporary name and renamed when complete.

`Checkpointing` is a mixin of PPOTrainer (rl/trainer.py): its methods use the trainer's config,
accelerator, unwrapped model, optimizer, kl_ctl, reward_stats and iteration.
"""
from __future__ import annotations

import functools
import hashlib
import json
import random
import shutil
import sys
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import numpy as np
import torch

from .ppo_config import LEGACY_CONFIG_NAMES, PPOConfig
from .rollout import as_query
from .run_folder import ADAPTER_DIR, CHECKPOINT_DIR, METRICS_FILE, REPLACED_DIR, VALUE_HEAD_FILE, checkpoint_folders

# PPOConfig fields a resumed run may change: they say how long to train and where and how often to
# save, not what an iteration computes. Every other field (and fields added later) must match.
RESUMABLE_SETTINGS = ("iterations", "save_every", "output_dir", "eval_every")   # what a resumed run may change
# (eval_every only decides when held-out metrics are logged; it never changes what is trained)


class ResumeMismatch(ValueError):
    """A checkpoint of a run with other settings than the one asked to resume it."""


def _torch_load(file: Path, fix: str, weights_only: bool):
    try:
        return torch.load(file, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise ValueError(f"{file} is missing; {fix}.") from None
    except Exception as err:     # a truncated zip archive, an unpickling error
        raise ValueError(f"{file} cannot be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                         f"{fix}.") from None


def _callable_name(fn) -> str | None:
    """A readable name for a scalarizer or query function (partials show their arguments)."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return f"{_callable_name(fn.func)}({', '.join(f'{k}={v!r}' for k, v in sorted(fn.keywords.items()))})"
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


class Checkpointing:
    """PPOTrainer's methods for its output folder: refuse to replace finished work, check and load a
    resume, save the adapter and checkpoints."""

    # set by train(); these defaults serve a trainer whose save_checkpoint() is called directly
    command = "PPOTrainer.train()"
    _earlier_runs: list = []         # the runs before a resume (reassigned, never mutated)
    _first_iteration = 0

    def _note(self, message: str) -> None:
        """One line on stderr from the main process (a fallback, a fresh start, nothing to do)."""
        if self.accelerator.is_main_process:
            print(f"note: {message}", file=sys.stderr)

    def _set_old_run_aside(self) -> None:
        """Move the checkpoints and metrics of the run being replaced into output_dir/replaced/ (its
        adapter stays where it is until the new one is complete); train() deletes them at the end."""
        out, aside = self.output_dir, self.output_dir / REPLACED_DIR
        live = [p for p in (out / CHECKPOINT_DIR, out / METRICS_FILE) if p.exists()]
        if not live:
            return
        if aside.exists():   # an earlier replacement stopped half way: its own partial files go
            self._note(f"discarding the unfinished replacement run in {out} (the run it was replacing is kept "
                       f"in {aside} until this one finishes).")
            for p in live:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            return
        aside.mkdir()
        for p in live:
            p.rename(aside / p.name)
        self._note(f"the run being replaced waits in {aside} until this one is complete.")

    def _runs(self) -> list[dict]:
        """Every command that trained this adapter, with the iterations it ran (a resumed run has several)."""
        return self._earlier_runs + [{"command": self.command, "iterations": [self._first_iteration, self.iteration]}]

    def run_settings(self) -> dict:
        """Everything that decides what a run computes, as JSON values: the config without
        RESUMABLE_SETTINGS, the KL horizon the controller really uses, the reward columns, scalarizer,
        query function, prompts (a fingerprint), base model, dtype and number of processes."""
        settings = {k: v for k, v in asdict(self.config).items() if k not in RESUMABLE_SETTINGS}
        if "horizon" in settings:          # None means "fitted to the run": compare the value in use
            settings["horizon"] = getattr(self.kl_ctl, "horizon", settings["horizon"])
        prompts = json.dumps([asdict(as_query(p)) for p in self.prompts], sort_keys=True)
        policy = self.unwrapped.policy
        settings.update(reward_names=self.reward_names, scalarizer=_callable_name(self.scalarizer),
                        query_fn=_callable_name(self.query_fn),
                        prompts=f"{len(self.prompts)} prompts, sha256 {hashlib.sha256(prompts.encode()).hexdigest()[:16]}",
                        base_model=getattr(policy.get_base_model().config, "_name_or_path", None),
                        dtype=str(policy.dtype), processes=self.world)
        return json.loads(json.dumps(settings))          # lists, not tuples: as read back from JSON

    def check_resume(self, state: dict, checkpoint: Path) -> None:
        """Refuse (ResumeMismatch, a ValueError) to resume a checkpoint whose run had other settings
        than this one: the optimizer state, RNG and statistics belong to those settings, and the
        record would lie.
        Only RESUMABLE_SETTINGS may differ; iterations may grow, never drop below the checkpoint's."""
        # a field added to PPOConfig after the checkpoint was written held its default value then
        saved = {f.name: f.default if f.default is not MISSING else f.default_factory()
                 for f in fields(PPOConfig) if f.name not in RESUMABLE_SETTINGS
                 and (f.default is not MISSING or f.default_factory is not MISSING)}
        if "settings" in state:
            saved.update({LEGACY_CONFIG_NAMES.get(k, k): v for k, v in state["settings"].items()})
        else:                               # a checkpoint from before settings were recorded
            saved.update({LEGACY_CONFIG_NAMES.get(k, k): v for k, v in state.get("config", {}).items()
                          if k not in RESUMABLE_SETTINGS})
            saved["horizon"] = state.get("kl_controller", {}).get("horizon", saved.get("horizon"))
        now = self.run_settings()
        differ = [k for k in now if k in saved and saved[k] != now[k]]
        if differ:
            listing = "; ".join(f"{k}: {saved[k]!r} in the checkpoint, {now[k]!r} now" for k in differ)
            raise ResumeMismatch(f"Cannot resume {checkpoint}: it was trained with other settings ({listing}). "
                                 f"Resume with the checkpoint's settings (only {', '.join(RESUMABLE_SETTINGS)} may "
                                 f"change), or train into another output folder.")
        if self.config.iterations < state["iteration"]:
            raise ResumeMismatch(f"Cannot resume {checkpoint} with iterations={self.config.iterations}: it has "
                                 f"{state['iteration']} iterations done already; pass iterations >= {state['iteration']}.")

    def resume_from_checkpoint(self) -> Path | None:
        """Load the newest readable checkpoint whose settings match (None: there is none at all)."""
        problems = []
        for folder in reversed(checkpoint_folders(self.output_dir)):
            try:
                loaded = self.read_checkpoint(folder)
            except ResumeMismatch:                      # another run's settings: never fall back silently
                raise
            except ValueError as err:                   # damaged: fall back to the one before
                problems.append(f"{folder.name}: {err}")
                self._note(f"checkpoint {folder} cannot be used ({err}); trying the one before it.")
                continue
            self.apply_checkpoint(loaded)
            if problems:
                self._note(f"resuming from {folder.name} instead (iteration {self.iteration}).")
            return folder
        if problems:
            raise ValueError(f"No usable checkpoint in {self.output_dir / CHECKPOINT_DIR} ({'; '.join(problems)}). "
                             f"Start the run again with --overwrite.")
        return None

    # ---------------------------------------------------------------------------------------
    # Saving and resuming
    # ---------------------------------------------------------------------------------------

    def save_model(self, path: str | Path | None = None) -> Path:
        """Write the adapter folder (PEFT save_pretrained, safetensors) with value_head.safetensors inside.

        It is written as `<path>.partial` and renamed when complete: an old adapter at `path` stays
        whole until the new one replaces it."""
        from safetensors.torch import save_file

        from ..data import partial_path, replace_with

        path = Path(path) if path else self.output_dir / ADAPTER_DIR
        if self.accelerator.is_main_process:
            tmp = partial_path(path)
            shutil.rmtree(tmp, ignore_errors=True)         # left over from an interrupted save
            model = self.unwrapped
            model.policy.save_pretrained(tmp, safe_serialization=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in model.value_head.state_dict().items()},
                      tmp / VALUE_HEAD_FILE)
            replace_with(tmp, path)
        self.accelerator.wait_for_everyone()
        return path

    def save_checkpoint(self) -> Path:
        """Everything a resumed run needs: adapter + value head, optimizer, KL controller,
        reward statistics, iteration, the run's settings, and every process's RNG states.
        Written into `iteration-N.partial` and renamed when every process has written its part."""
        from ..data import partial_path, replace_with

        path = self.output_dir / CHECKPOINT_DIR / f"iteration-{self.iteration:05d}"
        tmp = partial_path(path)
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.save_model(tmp / ADAPTER_DIR)
        if self.accelerator.is_main_process:
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            state = {"iteration": self.iteration, "wall_time": self.wall_time, "kl_controller": self.kl_ctl.state_dict(),
                     "reward_stats": self.reward_stats.state_dict(), "config": asdict(self.config),
                     "settings": self.run_settings(), "runs": self._runs()}
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        self.accelerator.wait_for_everyone()
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / f"rng_state_{self.rank}.pt")
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            replace_with(tmp, path)
        self.accelerator.wait_for_everyone()
        return path

    def read_checkpoint(self, path: str | Path) -> dict:
        """Read and check every file of a checkpoint without changing the trainer: a damaged file
        is a ValueError naming it; settings that differ from this run's raise ResumeMismatch."""
        from peft import get_peft_model_state_dict

        from ..data import read_json, read_safetensors

        path = Path(path)
        fix = "the checkpoint is damaged (an interrupted save or a full disk)"
        state = read_json(path / "trainer_state.json", fix)
        missing = [k for k in ("iteration", "wall_time", "kl_controller", "reward_stats") if k not in state]
        if missing:
            raise ValueError(f"{path / 'trainer_state.json'} lacks {missing}; {fix}.")
        self.check_resume(state, path)
        model = self.unwrapped
        adapter = read_safetensors(path / ADAPTER_DIR / "adapter_model.safetensors", fix)
        value_head = read_safetensors(path / ADAPTER_DIR / VALUE_HEAD_FILE, fix)
        for name, tensors, expected in (("adapter", adapter, get_peft_model_state_dict(model.policy)),
                                        ("value head", value_head, model.value_head.state_dict())):
            shapes = {k: tuple(v.shape) for k, v in tensors.items()}
            if shapes != {k: tuple(v.shape) for k, v in expected.items()}:
                raise ValueError(f"{path}: the {name} weights do not fit this model's layout; {fix}.")
        optimizer = _torch_load(path / "optimizer.pt", fix, weights_only=True)
        groups = [len(g["params"]) for g in optimizer.get("param_groups", [])] if isinstance(optimizer, dict) else None
        if groups != [len(g["params"]) for g in self.optimizer.param_groups]:
            raise ValueError(f"{path / 'optimizer.pt'} holds the state of another set of parameters; {fix}.")
        rng_file = path / f"rng_state_{self.rank}.pt"
        rng = _torch_load(rng_file, fix, weights_only=False) if rng_file.exists() else None
        return {"path": path, "state": state, "adapter": adapter, "value_head": value_head, "optimizer": optimizer,
                "rng": rng}

    def apply_checkpoint(self, checkpoint: dict) -> None:
        """Put a checkpoint read by read_checkpoint into the model, optimizer, controllers and RNGs."""
        from peft import set_peft_model_state_dict

        model, state, rng = self.unwrapped, checkpoint["state"], checkpoint["rng"]
        set_peft_model_state_dict(model.policy, {k: v.to(self.device) for k, v in checkpoint["adapter"].items()})
        model.value_head.load_state_dict(checkpoint["value_head"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.iteration, self.wall_time = state["iteration"], state["wall_time"]
        self.kl_ctl.load_state_dict(state["kl_controller"])
        self.reward_stats.load_state_dict(state["reward_stats"])
        self._earlier_runs = state.get("runs", [])
        if rng is not None:
            random.setstate(rng["python"])
            np.random.set_state(rng["numpy"])
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by save_checkpoint (same settings, same number of processes);
        nothing changes unless every file reads and fits."""
        self.apply_checkpoint(self.read_checkpoint(path))
