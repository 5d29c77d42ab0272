"""Reads for the reviewer dashboard and the metrics API: one payload, every figure.

All figures come from the running aggregates (dashboard.models: TallyBucket,
AnnotatorStats, ProjectStats) and the versions' stored metrics, never from
a scan of the vote table, so the cost does not grow with the votes:
about a dozen small queries whatever the project's size.

Every figure carries its sample size `n`, and intervals are 95%.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np
from django.utils import timezone

from dashboard.aggregates import FAST_MEDIAN_MS, FLAG_MIN_N, FLAG_POSITION
from dashboard.models import AnnotatorReliability, AnnotatorStats, ProjectStats, ReliabilityFit, TallyBucket
from dashboard.red_flags import MIN_MULTI_VOTE_PAIRS, red_flags
from labeling import selectors as labeling_selectors
from labeling.models import Project, Split
from preferences import agreement as ag
from rewardmodel.models import ModelVersion, QueueOrder, RetrainPolicy

ANNOTATORS_PER_PAGE = 50
MAX_PER_PAGE = 500
VERSIONS_SHOWN = 100
CHARTS = ("versions", "learning_curve", "calibration", "length_buckets", "agreement", "votes_per_pair", "annotators")
# An estimate over fewer pairs than this is marked a small sample: its interval
# is wide or, for a bootstrap over a few identical pairs, a misleading [100%, 100%].
SMALL_SAMPLE_N = MIN_MULTI_VOTE_PAIRS
ESTIMATES = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "model_vs_human", "human_ceiling")


# --------------------------------------------------------------------------- #
# Agreement
# --------------------------------------------------------------------------- #
def _histogram(project: Project, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    rows = TallyBucket.objects.filter(project=project, pairs__gt=0)
    if split:
        rows = rows.filter(split=split)
    hist: dict[tuple[int, int, int], int] = {}
    for a, b, t, n in rows.values_list("n_a", "n_b", "n_tie", "pairs"):
        hist[(a, b, t)] = hist.get((a, b, t), 0) + n
    keys = sorted(hist)
    return np.array(keys, dtype=np.int64).reshape(-1, 3), np.array([hist[k] for k in keys], dtype=np.float64)


def _compare(model: dict, ceiling: dict) -> dict:
    """Which is higher, said plainly, and whether the intervals overlap."""
    m, c = model.get("value"), ceiling.get("value")
    if m is None and not model["all_held_out"]["n"]:
        return {"higher": None, "text": "No active model version has scored held-out pairs yet."}
    if m is None or c is None:
        return {
            "higher": None,
            "text": "Not enough held-out pairs with two or more votes to compare the model with the human ceiling.",
        }
    higher = "model" if m > c else "humans" if c > m else "equal"
    overlap = (
        None not in (*model["ci"], *ceiling["ci"])
        and model["ci"][0] <= ceiling["ci"][1]
        and ceiling["ci"][0] <= model["ci"][1]
    )
    if higher == "model":
        text = (
            f"The model agrees with the majority more often ({m:.1%}) than a single annotator agrees with "
            f"the others ({c:.1%})."
        )
    elif higher == "humans":
        text = (
            f"A single annotator agrees with the others more often ({c:.1%}) than the model agrees with "
            f"the majority ({m:.1%})."
        )
    else:
        text = f"The model and a single annotator agree with the majority equally often ({m:.1%})."
    if overlap:
        text += " The 95% intervals overlap, so the difference may be noise."
    return {"higher": higher, "overlap": overlap, "text": text}


def agreement_figures(*, project: Project) -> dict:
    counts, weights = _histogram(project)
    n_votes = counts.sum(axis=1) if len(counts) else np.zeros(0)
    pairs_voted = int(weights.sum())
    pairs_multi = int(weights[n_votes >= 2].sum()) if len(counts) else 0
    votes = int((n_votes * weights).sum()) if len(counts) else 0
    per_pair: dict[int, int] = {}
    for k, w in zip(n_votes.tolist(), weights.tolist()):
        per_pair[int(k)] = per_pair.get(int(k), 0) + int(w)

    test_counts, test_weights = _histogram(project, Split.TEST)
    stats = ProjectStats.objects.filter(project=project).first() or ProjectStats(project=project)
    ceiling_test = ag.bootstrap_estimate(ag.human_ceiling, test_counts, test_weights)
    ceiling_inst = int(np.asarray(test_weights) @ ag.loo_instances(test_counts)[0]) if len(test_counts) else 0
    ceiling_all = ag.bootstrap_estimate(ag.human_ceiling, counts, weights)
    model_all = ag.proportion(stats.model_agree, stats.model_n)
    model_multi = ag.proportion(stats.model_agree2, stats.model_n2)
    model = {
        **model_multi.as_dict(),
        "pairs": "held-out pairs with 2+ votes and a decisive majority",
        "all_held_out": {**model_all.as_dict(), "pairs": "held-out pairs with a decisive majority"},
    }
    ceiling = {
        **ceiling_test.as_dict(),
        "instances": ceiling_inst,
        "pairs": "held-out pairs with 2+ votes (n = pairs; instances = votes compared)",
        "all_pairs": ceiling_all.as_dict(),
    }
    return {
        "sample": {
            "pairs_voted": pairs_voted,
            "pairs_with_2_votes": pairs_multi,
            "votes": votes,
            "mean_votes_per_pair": votes / pairs_voted if pairs_voted else None,
            "held_out_pairs_voted": int(test_weights.sum()),
        },
        "votes_per_pair": [{"votes": k, "pairs": per_pair[k]} for k in sorted(per_pair)],
        "percent_agreement": ag.bootstrap_estimate(ag.percent_agreement, counts, weights).as_dict(),
        "fleiss_kappa": ag.bootstrap_estimate(ag.fleiss_kappa, counts, weights).as_dict(),
        "krippendorff_alpha": ag.bootstrap_estimate(ag.krippendorff_alpha, counts, weights).as_dict(),
        "model_vs_human": model,
        "human_ceiling": ceiling,
        "model_vs_ceiling": _compare(model, ceiling),
        "active_version_id": stats.active_version_id,
    }


# --------------------------------------------------------------------------- #
# Versions and the active model
# --------------------------------------------------------------------------- #
def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def version_figures(*, project: Project) -> dict:
    rows = list(
        ModelVersion.objects.filter(project=project)
        .order_by("-number")
        .values(
            "id",
            "number",
            "created_at",
            "is_active",
            "metrics",
            "run__n_train_pairs",
            "run__n_test_pairs",
            "run__n_votes",
            "run__kind",
            "run__snapshot_at",
        )[:VERSIONS_SHOWN]
    )
    rows.reverse()
    versions, active = [], None
    for r in rows:
        m = r["metrics"] or {}
        ci = m.get("held_out_accuracy_ci") or [None, None]
        entry = {
            "id": r["id"],
            "number": r["number"],
            "kind": r["run__kind"],
            "created_at": r["created_at"].isoformat(),
            "data_read_at": r["run__snapshot_at"].isoformat() if r["run__snapshot_at"] else None,
            "is_active": r["is_active"],
            "held_out_accuracy": _num(m.get("held_out_accuracy")),
            "held_out_accuracy_ci": [_num(x) for x in ci[:2]],
            "train_accuracy": _num(m.get("train_accuracy")),
            "eval_loss": _num(m.get("eval_loss")),
            "length_baseline_accuracy": _num(m.get("length_baseline_accuracy")),
            "ece": _num(m.get("ece")),
            "n_train": _num(m.get("n_train")) or r["run__n_train_pairs"],
            "n_eval": _num(m.get("n_eval")) or r["run__n_test_pairs"],
            "n_votes": r["run__n_votes"],
        }
        versions.append(entry)
        if r["is_active"]:
            active = (entry, m)
    out = {"versions": versions, "active_version": None, "calibration": None, "length_buckets": None}
    if active:
        entry, m = active
        out["active_version"] = {
            **entry,
            **{
                k: m.get(k)
                for k in (
                    "p_model_prefers_longer",
                    "p_human_prefers_longer",
                    "reward_mean",
                    "reward_std",
                    "extreme_reward_share",
                    "swap_max_abs_diff",
                    "ensemble_disagreement",
                    "ensemble_split_share",
                )
            },
        }
        out["calibration"] = {
            "version": entry["number"],
            "ece": entry["ece"],
            "n": entry["n_eval"],
            "bins": m.get("reliability") or [],
        }
        out["length_buckets"] = {
            "version": entry["number"],
            "baseline": entry["length_baseline_accuracy"],
            "unit": "tokens, chosen minus rejected",
            "buckets": m.get("length_buckets") or [],
        }
        out["metrics"] = m
    return out


# --------------------------------------------------------------------------- #
# Heads and the queue's order
# --------------------------------------------------------------------------- #
HELD_OUT_NOTE = (
    "Held-out pairs are served in random order and keep their share of every annotator's work, whatever the "
    "strategy, so held-out accuracy stays an unbiased estimate."
)


def head_figures(*, versions: list[dict]) -> dict | None:
    """The newest head version: its accuracy, whether it is live, and how fresh its data is."""
    heads = [v for v in versions if v["kind"] == "head"]
    if not heads:
        return None
    head = heads[-1]
    read_at = head["data_read_at"]
    age = (timezone.now() - datetime.fromisoformat(read_at)).total_seconds() if read_at else None
    return {
        "version": head["number"],
        "is_active": head["is_active"],
        "held_out_accuracy": head["held_out_accuracy"],
        "held_out_accuracy_ci": head["held_out_accuracy_ci"],
        "n_train": head["n_train"],
        "n_eval": head["n_eval"],
        "data_read_at": read_at,
        "age_seconds": None if age is None else max(0, round(age)),
    }


def acquisition_figures(*, project: Project, policy: RetrainPolicy) -> dict:
    """The strategy that orders the queue, and when it last did."""
    order = QueueOrder.objects.filter(project=project).select_related("version").first()
    return {
        "strategy": project.acquisition,
        "exploration_percent": project.exploration_percent,
        "applied_strategy": order.strategy if order else None,
        "applied_at": order.applied_at.isoformat() if order and order.applied_at else None,
        "by_version": order.version.number if order and order.version else None,
        "ordered_pairs": order.ordered_pairs if order else 0,
        "held_out": HELD_OUT_NOTE,
        "head_every": policy.head_min_new_votes if policy.head_enabled else None,
    }


# --------------------------------------------------------------------------- #
# Annotators
# --------------------------------------------------------------------------- #
def _name(stats: AnnotatorStats) -> str:
    a = stats.annotator
    return a.user.get_username() if a.user_id else f"external:{a.external_id}"


FLAG_UNRELIABLE = "unreliable"
FLAG_PAUSED = "paused"


def annotator_quality(*, project: Project, annotator_ids: list[int]) -> dict[int, dict]:
    """Label-quality figures of these annotators: gold accuracy and self-consistency (each with a
    95% Wilson interval; value None without gold votes or repeat checks), the cached reliability of
    the project's label model (dashboard.quality; None until fitted), and whether they are paused.

    Four queries for a page of annotators, each on indexed rows of those
    annotators only; the reliability is read from the last fit, never fitted here.
    """
    gold = labeling_selectors.annotators_gold_counts(project=project, annotator_ids=annotator_ids)
    repeats = labeling_selectors.annotators_repeat_counts(project=project, annotator_ids=annotator_ids)
    standings = labeling_selectors.annotator_standings(project=project, annotator_ids=annotator_ids)
    reliability = {
        r.annotator_id: r for r in AnnotatorReliability.objects.filter(project=project, annotator_id__in=annotator_ids)
    }
    out = {}
    for a in annotator_ids:
        standing = standings.get(a)
        fitted = reliability.get(a)
        value = fitted.reliability if fitted is not None else None
        decisive = fitted.decisive_votes if fitted is not None else 0
        out[a] = {
            "gold_accuracy": ag.proportion(*gold.get(a, (0, 0))).as_dict(),
            "self_consistency": ag.proportion(*repeats.get(a, (0, 0))).as_dict(),
            "reliability": value,
            "reliability_votes": decisive,
            "unreliable": value is not None and _reliability_flagged(value, decisive),
            "paused": standing is not None and standing.paused_at is not None,
            "paused_at": standing.paused_at.isoformat() if standing and standing.paused_at else None,
            "pause_reason": standing.pause_reason if standing and standing.paused_at else "",
        }
    return out


def _reliability_flagged(reliability: float, decisive_votes: int) -> bool:
    from preferences.label_models import reliability_flagged  # the one rule; loaded once a fit exists

    return reliability_flagged(reliability=reliability, decisive_votes=decisive_votes)


def annotator_row(stats: AnnotatorStats, quality: dict | None = None) -> dict:
    quality = quality or {}
    flags = list(stats.flags)
    if quality.get("unreliable"):
        flags.append(FLAG_UNRELIABLE)
    if quality.get("paused"):
        flags.append(FLAG_PAUSED)
    return {
        "annotator": _name(stats),
        "annotator_id": stats.annotator_id,
        "votes": stats.votes,
        "median_ms": stats.median_latency_ms,
        "timed_votes": stats.latency_n,
        "agreement_with_others": ag.proportion(stats.loo_agree, stats.loo_n).as_dict(),
        "agreement_with_model": ag.proportion(stats.model_agree, stats.model_n).as_dict(),
        "p_left": ag.proportion(stats.left_chosen, stats.sided).as_dict(),
        "p_longer": ag.proportion(stats.longer_chosen, stats.longer_decidable).as_dict(),
        "tie_rate": ag.proportion(stats.ties, stats.votes).as_dict(),
        "gold_accuracy": quality.get("gold_accuracy") or ag.proportion(0, 0).as_dict(),
        "self_consistency": quality.get("self_consistency") or ag.proportion(0, 0).as_dict(),
        "reliability": quality.get("reliability"),
        "reliability_votes": quality.get("reliability_votes", 0),
        "paused": bool(quality.get("paused")),
        "paused_at": quality.get("paused_at"),
        "pause_reason": quality.get("pause_reason", ""),
        "flags": flags,
    }


def _rows(project: Project, stats: list[AnnotatorStats]) -> list[dict]:
    quality = annotator_quality(project=project, annotator_ids=[s.annotator_id for s in stats])
    return [annotator_row(s, quality.get(s.annotator_id)) for s in stats]


def _ordered(project: Project):
    return (
        AnnotatorStats.objects.filter(project=project)
        .select_related("annotator__user")
        .order_by("-flag_count", "-votes", "id")
    )


def annotator_page(*, project: Project, page: int = 1, per_page: int = ANNOTATORS_PER_PAGE) -> dict:
    """One page of the annotators table: flagged first, then the busiest."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = AnnotatorStats.objects.filter(project=project).count()
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(page, pages))
    rows = _rows(project, list(_ordered(project)[(page - 1) * per_page : page * per_page]))
    flag_lists = AnnotatorStats.objects.filter(project=project, flag_count__gt=0).values_list("flags", flat=True)
    by_flag: dict[str, int] = {}
    flagged = 0
    for flags in flag_lists:
        flagged += 1
        for f in flags:
            by_flag[f] = by_flag.get(f, 0) + 1
    tested = AnnotatorStats.objects.filter(project=project, sided__gte=FLAG_MIN_N).count()
    return {
        "total": total,
        "flagged": flagged,
        "flagged_by_reason": by_flag,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "rows": rows,
        "position_test": {
            "flagged": by_flag.get(FLAG_POSITION, 0),
            "tested": tested,
            "min_votes": FLAG_MIN_N,
            "expected_by_chance": 0.05 * tested,
        },
        "rules": {"min_n": FLAG_MIN_N, "fast_median_ms": FAST_MEDIAN_MS},
        "paused": labeling_selectors.annotators_paused_count(project=project),
        "reliability_fit": _fit_info(project),
    }


def _fit_info(project: Project) -> dict | None:
    fit = ReliabilityFit.objects.filter(project=project).first()
    if fit is None:
        return None
    return {"model": fit.model, "votes": fit.votes, "fitted_at": fit.fitted_at.isoformat(), "seconds": fit.seconds}


def annotator_rows_all(*, project: Project) -> Iterator[dict]:
    """Every annotator, in table order (for the CSV)."""
    chunk: list[AnnotatorStats] = []
    for stats in _ordered(project).iterator(chunk_size=2000):
        chunk.append(stats)
        if len(chunk) == 500:
            yield from _rows(project, chunk)
            chunk = []
    if chunk:
        yield from _rows(project, chunk)


# --------------------------------------------------------------------------- #
# The whole page
# --------------------------------------------------------------------------- #
def dashboard_payload(*, project: Project, page: int = 1, per_page: int = ANNOTATORS_PER_PAGE) -> dict:
    """Every figure on the dashboard, JSON-ready (the page and GET .../metrics both use it)."""
    agreement = agreement_figures(project=project)
    versions = version_figures(project=project)
    annotators = annotator_page(project=project, page=page, per_page=per_page)
    active = versions["active_version"]
    sample = agreement["sample"]
    policy = RetrainPolicy.for_project(project)
    for key in ESTIMATES:
        agreement[key]["small_sample"] = agreement[key]["n"] < SMALL_SAMPLE_N
    return {
        "project": {"slug": project.slug, "name": project.name, "overlap_target": project.overlap_target},
        "generated_at": timezone.now().isoformat(),
        **agreement,
        "versions": versions["versions"],
        "active_version": active,
        "learning_curve": [
            {
                "version": v["number"],
                "kind": v["kind"],
                "n_train": v["n_train"],
                "held_out_accuracy": v["held_out_accuracy"],
                "ci": v["held_out_accuracy_ci"],
            }
            for v in versions["versions"]
            if v["held_out_accuracy"] is not None
        ],
        "calibration": versions["calibration"],
        "length_buckets": versions["length_buckets"],
        "head": head_figures(versions=versions["versions"]),
        "acquisition": acquisition_figures(project=project, policy=policy),
        "annotators": annotators,
        "red_flags": red_flags(
            metrics=versions.get("metrics") or {},
            version_number=active["number"] if active else None,
            pairs_voted=sample["pairs_voted"],
            pairs_multi=sample["pairs_with_2_votes"],
            mean_votes=sample["mean_votes_per_pair"],
            alpha=agreement["krippendorff_alpha"],
            position=annotators["position_test"],
            paused_at=policy.paused_at.isoformat() if policy.paused_at else None,
            pause_reason=policy.pause_reason,
        ),
    }


def chart_table(*, payload: dict, chart: str) -> tuple[list[str], list[list]]:
    """The data behind one chart as a header and rows (the CSV download, and the page's text alternative)."""
    if chart == "versions":
        keys = [
            "number",
            "created_at",
            "is_active",
            "held_out_accuracy",
            "ci_lo",
            "ci_hi",
            "train_accuracy",
            "eval_loss",
            "length_baseline_accuracy",
            "ece",
            "n_train",
            "n_eval",
        ]
        rows = [
            [
                v["number"],
                v["created_at"],
                v["is_active"],
                v["held_out_accuracy"],
                *v["held_out_accuracy_ci"],
                v["train_accuracy"],
                v["eval_loss"],
                v["length_baseline_accuracy"],
                v["ece"],
                v["n_train"],
                v["n_eval"],
            ]
            for v in payload["versions"]
        ]
        return keys, rows
    if chart == "learning_curve":
        return (
            ["version", "n_train", "held_out_accuracy", "ci_lo", "ci_hi", "kind"],
            [
                [p["version"], p["n_train"], p["held_out_accuracy"], *p["ci"], p["kind"]]
                for p in payload["learning_curve"]
            ],
        )
    if chart == "calibration":
        cal = payload["calibration"] or {"bins": []}
        return (
            ["bin_lo", "bin_hi", "confidence", "accuracy", "count"],
            [
                [b.get("bin_lo"), b.get("bin_hi"), b.get("confidence"), b.get("accuracy"), b.get("count")]
                for b in cal["bins"]
            ],
        )
    if chart == "length_buckets":
        lb = payload["length_buckets"] or {"buckets": []}
        return (
            ["bucket", "lo", "hi", "accuracy", "count"],
            [[b.get("bucket"), b.get("lo"), b.get("hi"), b.get("accuracy"), b.get("count")] for b in lb["buckets"]],
        )
    if chart == "agreement":
        rows = []
        for key in ESTIMATES:
            f = payload[key]
            rows.append([key, f["value"], f["ci"][0], f["ci"][1], f["n"]])
        return ["figure", "value", "ci_lo", "ci_hi", "n"], rows
    if chart == "votes_per_pair":
        return ["votes", "pairs"], [[r["votes"], r["pairs"]] for r in payload["votes_per_pair"]]
    raise ValueError(f"unknown chart {chart!r}")


ANNOTATOR_CSV_HEADER = [
    "annotator",
    "votes",
    "median_ms",
    "agreement_with_others",
    "others_n",
    "agreement_with_model",
    "model_n",
    "p_left",
    "p_left_ci_lo",
    "p_left_ci_hi",
    "sided_n",
    "p_longer",
    "longer_n",
    "tie_rate",
    "gold_accuracy",
    "gold_ci_lo",
    "gold_ci_hi",
    "gold_n",
    "self_consistency",
    "consistency_ci_lo",
    "consistency_ci_hi",
    "repeat_n",
    "reliability",
    "paused",
    "flags",
]


def annotator_csv_row(row: dict) -> list:
    return [
        row["annotator"],
        row["votes"],
        row["median_ms"],
        row["agreement_with_others"]["value"],
        row["agreement_with_others"]["n"],
        row["agreement_with_model"]["value"],
        row["agreement_with_model"]["n"],
        row["p_left"]["value"],
        *row["p_left"]["ci"],
        row["p_left"]["n"],
        row["p_longer"]["value"],
        row["p_longer"]["n"],
        row["tie_rate"]["value"],
        row["gold_accuracy"]["value"],
        *row["gold_accuracy"]["ci"],
        row["gold_accuracy"]["n"],
        row["self_consistency"]["value"],
        *row["self_consistency"]["ci"],
        row["self_consistency"]["n"],
        row["reliability"],
        row["paused"],
        " ".join(row["flags"]),
    ]


def annotator_own_figures(*, project: Project, user, **signal_kwargs) -> dict:
    """What an annotator may see about their own work, never anyone else's.

    The labeling page asks for it (a receiver of
    labeling.signals.annotator_figures_wanted). The figures count the votes
    folded in so far, which may trail the last few votes by seconds, so each
    comes with the count it is over; shares are left out below FLAG_MIN_N,
    where one vote swings them by tens of percent.
    """
    stats = AnnotatorStats.objects.filter(project=project, annotator__user=user).first()
    if stats is None:
        return {}

    def share(part: int, whole: int) -> int | None:
        return round(100 * part / whole) if whole >= FLAG_MIN_N else None

    # Their gold accuracy over check pairs answered before today (UTC) only: a
    # figure that moved right after a vote would tell which pair was a check,
    # and whether their answer to it was right.
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    right, answered = labeling_selectors.annotator_gold_counts(
        project=project, annotator_id=stats.annotator_id, before=today
    )
    return {
        "gold_accuracy": share(right, answered),
        "gold_n": answered,
        "counted": stats.votes,
        "median_seconds": None if stats.median_latency_ms is None else round(stats.median_latency_ms / 1000, 1),
        "agreement": share(stats.loo_agree, stats.loo_n),
        "agreement_n": stats.loo_n,
        "left_share": share(stats.left_chosen, stats.sided),
        "sided": stats.sided,
        "min_n": FLAG_MIN_N,
    }
