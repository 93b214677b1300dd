"""The demo page (notebooks/app/soup_demo.ipynb, served by `make demo` with Voila): the shipped soup
on sliders. The app notebook only calls `soup_demo()`; everything it shows is `widgets.SoupWidget`.

    from rlphf_lab.demo import soup_demo
    soup_demo()          # loads the policy and the six shipped adapters, returns the widget
"""
from __future__ import annotations

from . import config, soups
from .widgets import SoupWidget


def soup_demo(prompt: str | None = None, max_new_tokens: int | None = None, **kwargs) -> SoupWidget:
    """The SoupWidget on the shipped adapters (random stand-ins, with a note, for any that are missing).
    max_new_tokens: 24 in quick mode (RLPHF_QUICK=1, as in the browser tests), 80 otherwise."""
    model, tokenizer, _source = soups.load_soup()
    if prompt is not None:
        kwargs["prompt"] = prompt
    return SoupWidget(model, tokenizer, max_new_tokens=max_new_tokens or config.pick(24, 80), **kwargs)
