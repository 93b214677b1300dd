"""The one output format of every exercise check: a line that starts "Correct!" or "Not yet:" and
says why, and True or False."""


def report(ok: bool, message: str) -> bool:
    print(("Correct! " if ok else "Not yet: ") + message)
    return ok
