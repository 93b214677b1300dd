"""Notebook widgets. They hold no logic of their own: every button and slider calls a plain
function of the library that a unit test can call too; tests/browser drives them in Chromium.

    feedback  FeedbackWidget: label pairs yourself (notebooks 01, 03)
    soup      SoupWidget: drag the soup's weights and watch the policy re-mix itself (notebook 06)
"""
from .feedback import FeedbackWidget, pair_html
from .soup import SoupWidget, answer_html, legend_html, score_bars_html, segments_html

__all__ = ["FeedbackWidget", "pair_html", "SoupWidget", "score_bars_html", "answer_html", "segments_html",
           "legend_html"]
