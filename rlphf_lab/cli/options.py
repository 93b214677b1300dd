"""The command line's options: checked types, defaults by size, and files it reads and writes.

Every check names the option, the value and what is allowed, in one line (cli/__init__.main prints
it as `error: ...`, exit code 2), before any model loads.
"""
from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path

from ..config import RUNS_DIR  # noqa: F401  (git-ignored: where every command writes by default)


def default_out(command: str, name: str = "") -> Path:
    """The default output of a command: runs/<command>/<name>, never the shipped files in data/."""
    return RUNS_DIR / command / name if name else RUNS_DIR / command


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (`error: argument --iterations: ...`), exit 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high]."""
    allowed = f"a whole number >= {low}" + (f" and <= {high}" if high is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value
    return parse


def real(low: float | None = None, *, above: float | None = None):
    """An argparse type: a finite number, >= low or > above when given (NaN and inf never pass)."""
    allowed = ("a finite number" + (f" >= {low:g}" if low is not None else "")
               + (f" > {above:g}" if above is not None else ""))

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and value < low) or (above is not None and value <= above):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    return parse


COUNT, COUNT0, SEED = whole(1), whole(0), whole(0)
RATE = real(above=0)                     # learning rates, epochs, KL targets


def share_or_natural(text: str) -> float | None:
    """--hack-share: a number in [0, 1], or 'natural' (None: keep the pairs' own mix)."""
    if text.strip().lower() == "natural":
        return None
    value = real(0.0)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1 or 'natural', got {text!r}")
    return value


def disagreement(text: str) -> str:
    """--disagreement: low, high, or a number >= 0 (kept as text: it names the output file)."""
    from ..feedback.raters import DISAGREEMENT

    if text in DISAGREEMENT:
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be {' or '.join(DISAGREEMENT)} or a finite number >= 0, got {text!r}")
    return text


def or_default(value, default):
    """The option's value if it was given (0 is a value, not "unset"), else `default`."""
    return default if value is None else value


def sized(value, quick, full):
    """The option's value if it was given, else its quick-mode or full-size default."""
    from ..config import pick

    return or_default(value, pick(quick, full))


def side_codes(text: str | None, allow_general: bool = True) -> list[str]:
    """--sides P1A,P2B (default: all six); 'general' is the RLHF baseline's rater."""
    from ..feedback.annotators import GENERAL
    from ..preferences import SIDES, get_preference

    if text is None:
        return list(SIDES)
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise ValueError(f"--sides {text!r} names no side; give codes like P1A,P2B ({', '.join(SIDES)}"
                         f"{', general' if allow_general else ''}).")
    return [c if allow_general and c == GENERAL else get_preference(c).code for c in codes]


def input_file(path, option: str, hint: str) -> Path:
    """A file the command reads: missing is a FileNotFoundError that says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: {'a folder, not a file' if path.is_dir() else 'no such file'}; {hint}.")
    return path


def output_file(path, overwrite: bool, *also: Path) -> Path:
    """A file the command writes (and files written beside it): refuse a folder, and refuse to
    replace an existing file unless --overwrite."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give the file to write, e.g. --out {path / 'out.jsonl'}.")
    refuse_existing([path, *also], overwrite)
    return path


def output_dir(path, overwrite: bool = True, inside=()) -> Path:
    """A folder the command writes into: refuse a file, and refuse to replace the named results
    inside it unless --overwrite."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder; give a folder (it is created if needed).")
    refuse_existing([path / name for name in inside], overwrite)
    return path


def refuse_existing(paths, overwrite: bool) -> None:
    found = [p for p in paths if p.exists()]
    if found and not overwrite:
        listing = ", ".join(str(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise FileExistsError(f"{listing} exists already; nothing was changed. To keep it, pass another --out; "
                              f"to replace it, add --overwrite.")


def check_device(args) -> None:
    """--device and --dtype, before any model loads."""
    from ..config import default_device, default_dtype

    device = default_device(getattr(args, "device", None))
    if getattr(args, "dtype", None):
        default_dtype(device, args.dtype)


def command_line(args) -> str:
    """The exact command line, quoted so that it can be pasted back into a shell."""
    return "rlphf-lab " + shlex.join(args.argv)


def resume_command_line(args) -> str:
    """The command line that continues an interrupted training run."""
    argv = [a for a in args.argv if a != "--overwrite"]
    return "rlphf-lab " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"]))


def json_field(file: Path, key: str):
    """One field of a JSON record (a provenance file), or None if the file or the field is missing."""
    import json

    try:
        return json.loads(file.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def candidates_file(args) -> Path:
    from ..data import CANDIDATES_FILE

    path = CANDIDATES_FILE if args.candidates is None else args.candidates
    return input_file(path, "--candidates", "make a candidate pool with `rlphf-lab generate-candidates`, or pass "
                                             "--candidates data/candidates.jsonl")
