"""Drift monitoring of realised contact rates against expectations (``collsim monitor``).

From lender logs (:func:`collsim.logs.load_logs`), each contact attempt falls in a
cell channel × segment × local hour band:

* segment: the account's ``segment_label`` in the accounts file, or, when empty, its
  DPD bucket on the contact's day (``dpd₀ + days since the window start``, the
  snapshot's DPD rolled forward; cures are not tracked);
* hour band: the contact's local hour in ``00-07``, ``08-11``, ``12-16``, ``17-23``;
  ``untimed`` for letters and legal filings.

Rates (numerator / denominator, per cell):

* ``answer_rate``: attempts that reached someone or were delivered (any outcome but
  ``no_answer``, ``voicemail``, ``not_delivered``) / attempts;
* ``rpc_rate``: right-party contacts (``right_party`` .. ``cease_request``) / attempts;
* ``ptp_rate``: ``promise_to_pay`` / right-party contacts;
* ``promise_kept_rate``: promises whose account paid at least 99 % of the promised
  amount (any payment when the amount is unknown) from the contact's day to the
  promise date / promises with a known date no later than the last log day;
* ``payment_rate``: attempts whose account paid the same local day / attempts.

Realised: the last ``window_days`` days of the logs.  Expected: a reference window,
either the first ``reference_days`` days of the same logs or all days of a reference
log folder.  With reference ``k₀ / n₀`` and realised ``k₁ / n₁``, the expected
interval is ``p₀ ± z · sqrt(p̃₀ (1 − p̃₀) (1/n₁ + 1/n₀))`` (binomial, normal
approximation; ``p̃₀ = (k₀ + 0.5) / (n₀ + 1)``, z of ``level``); a cell leaves its band
when both windows have at least ``min_attempts`` in the denominator and ``k₁ / n₁``
lies outside the interval widened by ``tolerance`` (absolute) on each side.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from collsim.io import atomic_write_text
from collsim.logs import Logs, LogWindow, load_logs
from collsim.portfolio import day_number
from collsim.timeutil import utc_to_local
from collsim.vocab import BUCKETS, CHANNELS, IS_TIMED, Outcome, bucket_of

EXIT_OK = 0
EXIT_DRIFT = 1
HOUR_BANDS: tuple[tuple[str, int, int], ...] = (
    ("00-07", 0, 8),
    ("08-11", 8, 12),
    ("12-16", 12, 17),
    ("17-23", 17, 24),
)
"""Local hour bands: (name, first hour, end hour exclusive)."""
UNTIMED = "untimed"
RATES: tuple[str, ...] = (
    "answer_rate",
    "rpc_rate",
    "ptp_rate",
    "promise_kept_rate",
    "payment_rate",
)
NOT_ANSWERED = (Outcome.NO_ANSWER, Outcome.VOICEMAIL, Outcome.NOT_DELIVERED)


@dataclass(frozen=True)
class MonitorSettings:
    """Windows and band of ``collsim monitor``.

    Attributes:
        window_days: the realised (rolling) window: the last days of the logs.
        reference_days: the first days of the logs that give the expectations
            (ignored with a reference folder).
        tolerance: absolute widening of the expected interval on each side.
        min_attempts: a cell is judged only with at least this denominator in both windows.
        level: level of the binomial interval.
        label: an optional label (e.g. the artifact that made the plans); shown only.
    """

    window_days: int = 7
    reference_days: int = 7
    tolerance: float = 0.02
    min_attempts: int = 200
    level: float = 0.99
    label: str | None = None


@dataclass(frozen=True)
class Attempts:
    """Per contact attempt: its day offset, cell and the rate flags.

    Attributes:
        offset: int day offset from the logs' first day.
        cell: int cell code (channel × segment × band), named by ``cell_name``.
        channel: int channel code.
        flags: rate name → (numerator bool [M], denominator bool [M]).
        days: number of days the logs cover.
        cell_name: code → "channel | segment | band".
    """

    offset: np.ndarray
    cell: np.ndarray
    channel: np.ndarray
    flags: dict[str, tuple[np.ndarray, np.ndarray]]
    days: int
    cell_name: Callable[[int], str]


def load_all_days(folder: Path) -> Logs:
    """Load logs over all their days (window = first..last local day with a row)."""
    logs = load_logs(folder, LogWindow(dt.date(1970, 1, 2)))
    days = logs.contacts.history.local_day
    if days.size == 0:
        raise ValueError(f"{folder}: the contacts file has no row to monitor")
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(days.min()))
    last = dt.date(1970, 1, 1) + dt.timedelta(days=int(days.max()))
    return Logs(logs.accounts, logs.contacts, logs.payments, LogWindow(first, last))


def _bands(channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """int band code per attempt: an index into :data:`HOUR_BANDS`, or ``len`` = untimed."""
    out = np.full(channel.shape[0], len(HOUR_BANDS), dtype=np.int64)
    timed = IS_TIMED[channel.astype(np.int64)]
    for code, (_, lo, hi) in enumerate(HOUR_BANDS):
        out[timed & (hour >= lo) & (hour < hi)] = code
    return out


def _segments(logs: Logs, account: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(segment code per attempt, segment names): the label, or the DPD bucket when empty."""
    a = logs.accounts
    text = np.asarray([str(s).strip() for s in a.segment_label], dtype=object)
    labels, label_code = np.unique(text, return_inverse=True)
    names = [f"dpd {b}" for b in BUCKETS] + [str(x) for x in labels]
    dpd0 = np.asarray(a.dpd, dtype=np.int64)[account]
    bucket = bucket_of(np.where(dpd0 > 0, dpd0 + offset, 0)).astype(np.int64)
    code = np.where(text[account] == "", bucket, len(BUCKETS) + label_code[account])
    return code, names


def _paid_days(logs: Logs) -> np.ndarray:
    a, p = logs.accounts, logs.payments
    day, _ = utc_to_local(a.timezones, a.timezone[p.account], p.timestamp_utc_s)
    return np.asarray(day, dtype=np.int64)


def _kept(logs: Logs, rows: np.ndarray, pay_day: np.ndarray) -> np.ndarray:
    """bool per promise row: the account paid the promise between its day and its date."""
    c, p = logs.contacts, logs.payments
    span = int(max(pay_day.max(initial=0), c.promise_day.max(initial=0))) + 2
    key = p.account.astype(np.int64) * span + pay_day
    order = np.argsort(key, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(p.amount[order])])
    key = key[order]
    base = c.history.account[rows].astype(np.int64) * span
    lo = np.searchsorted(key, base + c.history.local_day[rows], side="left")
    hi = np.searchsorted(key, base + c.promise_day[rows], side="right")
    paid = cum[hi] - cum[lo]
    amount = c.promise_amount[rows]
    return np.where(np.isnan(amount), paid > 0, paid >= 0.99 * np.nan_to_num(amount))


def attempts(logs: Logs) -> Attempts:
    """Every contact attempt of ``logs`` with its cell and rate flags."""
    c, h = logs.contacts, logs.contacts.history
    start = day_number(logs.window.start)
    offset = h.local_day.astype(np.int64) - start
    channel = h.channel.astype(np.int64)
    segment, segment_names = _segments(logs, h.account, offset)
    band = _bands(channel, h.local_hour.astype(np.int64))
    n_bands = len(HOUR_BANDS) + 1
    cell = (channel * len(segment_names) + segment) * n_bands + band
    band_names = [name for name, _, _ in HOUR_BANDS] + [UNTIMED]

    def cell_name(code: int) -> str:
        rest, b = divmod(code, n_bands)
        c, g = divmod(rest, len(segment_names))
        return f"{CHANNELS[c]} | {segment_names[g]} | {band_names[b]}"

    outcome = c.outcome
    everything = np.ones(c.m, dtype=bool)
    answered = ~np.isin(outcome, NOT_ANSWERED)
    rpc = (outcome >= Outcome.RIGHT_PARTY) & (outcome <= Outcome.CEASE_REQUEST)
    ptp = outcome == Outcome.PROMISE_TO_PAY
    pay_day = _paid_days(logs)
    last_day = start + int(offset.max(initial=0))
    due = np.flatnonzero(ptp & (c.promise_day >= 0) & (c.promise_day <= last_day))
    promise_due = np.zeros(c.m, dtype=bool)
    promise_due[due] = True
    kept = np.zeros(c.m, dtype=bool)
    kept[due] = _kept(logs, due, pay_day)
    paid_keys = np.unique(logs.payments.account.astype(np.int64) * (1 << 32) + pay_day)
    paid_today = np.isin(h.account.astype(np.int64) * (1 << 32) + h.local_day, paid_keys)
    flags = {
        "answer_rate": (answered, everything),
        "rpc_rate": (rpc, everything),
        "ptp_rate": (ptp, rpc),
        "promise_kept_rate": (kept, promise_due),
        "payment_rate": (paid_today, everything),
    }
    return Attempts(offset, cell, channel, flags, int(offset.max(initial=0)) + 1, cell_name)


# --------------------------------------------------------------------------- bands
@dataclass(frozen=True)
class CellRate:
    """One (cell, rate): the reference, the realised rate and the verdict."""

    cell: str
    rate: str
    reference_hits: int
    reference_n: int
    realised_hits: int
    realised_n: int
    expected: float
    low: float
    high: float
    status: str

    @property
    def realised(self) -> float:
        """k₁ / n₁ (NaN without attempts)."""
        return self.realised_hits / self.realised_n if self.realised_n else float("nan")


def _counts(a: Attempts, rows: np.ndarray, rate: str) -> dict[str, tuple[int, int]]:
    hit, den = a.flags[rate]
    keep = rows & den
    cells, inverse = np.unique(a.cell[keep], return_inverse=True)
    k = np.bincount(inverse, weights=hit[keep].astype(float), minlength=cells.size)
    n = np.bincount(inverse, minlength=cells.size)
    return {a.cell_name(int(c)): (int(ki), int(ni)) for c, ki, ni in zip(cells, k, n, strict=True)}


def expected_band(
    k0: int, n0: int, n1: int, settings: MonitorSettings
) -> tuple[float, float, float]:
    """(p₀, low, high): the reference rate and the interval widened by the tolerance."""
    p0 = k0 / n0
    smooth = (k0 + 0.5) / (n0 + 1.0)
    z = float(stats.norm.ppf(0.5 + settings.level / 2.0))
    half = z * np.sqrt(smooth * (1.0 - smooth) * (1.0 / max(n1, 1) + 1.0 / n0))
    low = max(0.0, p0 - half - settings.tolerance)
    high = min(1.0, p0 + half + settings.tolerance)
    return p0, low, high


def judge(
    reference: Attempts, realised: Attempts, ref_rows: np.ndarray, now_rows: np.ndarray,
    settings: MonitorSettings,
) -> list[CellRate]:  # fmt: skip
    """Every (cell, rate) seen in either window, with its band and status."""
    out = []
    for rate in RATES:
        ref, now = _counts(reference, ref_rows, rate), _counts(realised, now_rows, rate)
        for cell in sorted(set(ref) | set(now)):
            k0, n0 = ref.get(cell, (0, 0))
            k1, n1 = now.get(cell, (0, 0))
            if n0 == 0:
                out.append(CellRate(cell, rate, k0, n0, k1, n1, np.nan, np.nan, np.nan, "new"))
                continue
            p0, low, high = expected_band(k0, n0, n1, settings)
            enough = min(n0, n1) >= settings.min_attempts
            outside = n1 > 0 and not low <= k1 / n1 <= high
            status = ("out of band" if outside else "ok") if enough else "too few"
            out.append(CellRate(cell, rate, k0, n0, k1, n1, p0, low, high, status))
    return out


# --------------------------------------------------------------------------- report
def _rolling(a: Attempts, rate: str, channel: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(days, trailing ``window``-day rate of ``channel``) for every day with a full window."""
    hit, den = a.flags[rate]
    sel = den & (a.channel == channel)
    k = np.bincount(a.offset[sel], weights=hit[sel].astype(float), minlength=a.days)
    n = np.bincount(a.offset[sel], minlength=a.days).astype(float)
    kc, nc = np.concatenate([[0.0], np.cumsum(k)]), np.concatenate([[0.0], np.cumsum(n)])
    days = np.arange(window - 1, a.days)
    num, total = kc[days + 1] - kc[days + 1 - window], nc[days + 1] - nc[days + 1 - window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return days, np.where(total > 0, num / np.maximum(total, 1), np.nan)


def plot_png(
    reference: Attempts, realised: Attempts, ref_rows: np.ndarray, settings: MonitorSettings
) -> bytes:
    """PNG: per rate, each channel's rolling realised rate and its reference rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(RATES), 1, figsize=(9, 2.6 * len(RATES)), sharex=True)
    for ax, rate in zip(axes, RATES, strict=True):
        hit, den = reference.flags[rate]
        for channel in np.unique(realised.channel):
            sel_ref = ref_rows & den & (reference.channel == channel)
            if sel_ref.sum() < settings.min_attempts:
                continue
            days, series = _rolling(realised, rate, int(channel), settings.window_days)
            (line,) = ax.plot(days, series, label=CHANNELS[int(channel)])
            ax.axhline(hit[sel_ref].mean(), color=line.get_color(), linestyle=":", linewidth=1)
        ax.set_ylabel(rate.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1].set_xlabel(
        f"day of the logs (trailing {settings.window_days}-day rate; dotted: reference)"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _table(rows: list[CellRate]) -> str:
    head = ("cell", "rate", "status", "realised", "n", "expected", "band", "reference n")
    order = sorted(rows, key=lambda r: (r.status != "out of band", r.status, r.rate, r.cell))
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in order:
        cls = ' class="out"' if r.status == "out of band" else ""
        band = "" if np.isnan(r.low) else f"{r.low:.3f} – {r.high:.3f}"
        expected = "" if np.isnan(r.expected) else f"{r.expected:.3f}"
        realised = "" if np.isnan(r.realised) else f"{r.realised:.3f}"
        cells = (r.cell, r.rate, r.status, realised, f"{r.realised_n:,}", expected, band,
                 f"{r.reference_n:,}")  # fmt: skip
        lines.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def html_report(
    rows: list[CellRate], png: bytes, settings: MonitorSettings, windows: dict[str, str]
) -> str:
    """The HTML page: parameters, verdict, the embedded plot and the table of cells."""
    out = [r for r in rows if r.status == "out of band"]
    verdict = f"{len(out)} cell rate(s) out of band" if out else "all cells within their bands"
    params = {**windows, "tolerance": f"{settings.tolerance:g}", "level": f"{settings.level:g}",
              "min attempts": str(settings.min_attempts)}  # fmt: skip
    if settings.label:
        params["label"] = settings.label
    items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in params.items())
    image = base64.b64encode(png).decode("ascii")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>collsim monitor</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
        "tr.out{background:#fdd}</style></head><body>\n"
        f"<h1>collsim monitor: {html.escape(verdict)}</h1>\n<ul>{items}</ul>\n"
        f"<img alt='rolling rates' src='data:image/png;base64,{image}'>\n"
        f"{_table(rows)}\n</body></html>\n"
    )


@dataclass(frozen=True)
class MonitorResult:
    """The judged cells and the page."""

    rows: list[CellRate]
    page: str

    @property
    def out_of_band(self) -> list[CellRate]:
        """The cell rates that left their band."""
        return [r for r in self.rows if r.status == "out of band"]


def monitor(
    logs: Logs, reference: Logs | None, settings: MonitorSettings,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:  # fmt: skip
    """Judge the last ``window_days`` of ``logs`` against the reference (see the module doc).

    Raises:
        ValueError: the logs are too short for the windows.
    """
    note = progress or (lambda _step: None)
    note("reading attempts")
    now = attempts(logs)
    if settings.window_days < 1 or settings.window_days > now.days:
        raise ValueError(f"--window-days {settings.window_days} must be in 1..{now.days} "
                         "(the days the logs cover)")  # fmt: skip
    now_rows = now.offset >= now.days - settings.window_days
    if reference is None:
        if settings.reference_days < 1 or settings.reference_days >= now.days:
            raise ValueError(f"--reference-days {settings.reference_days} must be in "
                             f"1..{now.days - 1} (the logs cover {now.days} days)")  # fmt: skip
        ref, ref_rows = now, now.offset < settings.reference_days
        ref_text = f"first {settings.reference_days} day(s) of the logs"
    else:
        ref = attempts(reference)
        ref_rows = np.ones(ref.offset.size, dtype=bool)
        ref_text = f"reference logs {reference.window.start}..{reference.window.end}"
    note("judging cells")
    rows = judge(ref, now, ref_rows, now_rows, settings)
    note("plotting")
    png = plot_png(ref, now, ref_rows, settings)
    first = logs.window.start + dt.timedelta(days=now.days - settings.window_days)
    windows = {"realised window": f"{first}..{logs.window.end}", "expected from": ref_text}
    return MonitorResult(rows, html_report(rows, png, settings, windows))


def monitor_command(
    logs_folder: Path, reference_folder: Path | None, out: Path, settings: MonitorSettings
) -> int:
    """``collsim monitor``: write the HTML report atomically; 1 if a cell left its band."""
    logs = load_all_days(logs_folder)
    reference = None if reference_folder is None else load_all_days(reference_folder)
    result = monitor(logs, reference, settings)
    atomic_write_text(out, result.page)
    judged = [r for r in result.rows if r.status in ("ok", "out of band")]
    print(f"wrote {out}: {len(result.out_of_band)} of {len(judged)} judged cell rates out of band")
    for r in result.out_of_band[:20]:
        print(f"out of band: {r.cell} {r.rate} {r.realised:.3f} (n {r.realised_n:,}); "
              f"expected {r.low:.3f}..{r.high:.3f}")  # fmt: skip
    return EXIT_DRIFT if result.out_of_band else EXIT_OK


__all__ = [
    "HOUR_BANDS",
    "RATES",
    "Attempts",
    "CellRate",
    "MonitorResult",
    "MonitorSettings",
    "attempts",
    "expected_band",
    "judge",
    "load_all_days",
    "monitor",
    "monitor_command",
]
