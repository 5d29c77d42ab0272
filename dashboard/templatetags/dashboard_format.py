"""Number formats for the dashboard: shares as percentages, intervals, sample sizes."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value, digits: int = 1) -> str:
    """0.1234 -> "12.3%"; None -> "–"."""
    if value is None:
        return "–"
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def num(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def ci_pct(figure: dict) -> str:
    """An estimate dict's interval as "[12.1%, 13.4%]"."""
    lo, hi = (figure or {}).get("ci", [None, None])
    return "" if lo is None or hi is None else f"[{100 * lo:.1f}%, {100 * hi:.1f}%]"


@register.filter
def ci_num(figure: dict) -> str:
    lo, hi = (figure or {}).get("ci", [None, None])
    return "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


@register.filter
def seconds(ms) -> str:
    return "–" if ms is None else f"{ms / 1000:.1f} s"


FLAG_TEXT = {
    "position_bias": "position bias",
    "low_agreement": "low agreement with others",
    "too_fast": "too fast",
    "unreliable": "unreliable (label model)",
    "paused": "paused (gold accuracy)",
}
# Flags shown in red: the annotator's labels are not to be trusted (docs/label_quality.md).
SEVERE_FLAGS = {"unreliable", "paused"}


@register.filter
def flag_class(code: str) -> str:
    return "error" if code in SEVERE_FLAGS else "warn"


@register.filter
def ago(seconds) -> str:
    """A duration in seconds in words, to the minute: "40 s", "2 min", "3 h 5 min", "2 days"."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{hours // 24} days"


@register.filter
def flag_text(code: str) -> str:
    return FLAG_TEXT.get(code, code.replace("_", " "))


# Column names of the chart tables (selectors.chart_table) as the page's text alternative shows them.
HEADER_TEXT = {
    "number": "version",
    "ci_lo": "95% CI low",
    "ci_hi": "95% CI high",
    "n_train": "train pairs",
    "n_eval": "held-out pairs",
    "n": "n",
    "ece": "ECE",
    "is_active": "live",
    "created_at": "created",
    "length_baseline_accuracy": "“longer wins” accuracy",
    "bin_lo": "bin from",
    "bin_hi": "bin to",
    "lo": "from",
    "hi": "to",
}


@register.filter
def header_text(key: str) -> str:
    return HEADER_TEXT.get(key, key.replace("_", " "))


@register.filter
def cell(value) -> str:
    """A chart table's cell: numbers to three decimals, yes/no, and – for nothing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("_", " ")  # figure names such as percent_agreement read as words
