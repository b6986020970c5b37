"""Prometheus ``/api/v1/query_range`` response bodies, one per UTC day and query.

Evaluation timestamps are whole minutes (step 60 s); as in real Prometheus, the
sample at ``t`` of a ``…[1m]`` range function covers ``(t − 60 s, t]``, so an outage
starting at minute ``S`` shows as ``"0"`` from the sample at ``S + 60``. Files span
[D 00:00Z, D+1 00:00Z); the last one ends with the sample at the coverage end. Values are strings formatted like Go's
``strconv.FormatFloat(v, 'f', -1, 64)`` ("1", "0", "1234.667"). Matrix series are
sorted by their label sets, as Prometheus returns them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np

from kaizen.demo.scenario import DAY, IST_OFFSET, Outage, Period, ScrapeGap, epoch_day_ist, iso_z, utc_date

LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
LE_BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
PROBE_METRIC = {"instance": "trading-api", "job": "blackbox"}
EXTRAPOLATION = 4.0 / 3.0  # increase() over 4 scrapes 15 s apart, extrapolated to 60 s
LAT_MEDIAN_S, LAT_SIGMA = 0.104, 0.546  # lognormal p95 ≈ 255 ms; histogram_quantile ≈ 265 ms
BAD_LE = "0.25"


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return np.array([0.5 * (1 + erf(v / sqrt(2))) for v in x])


def bucket_probs(median: float, sigma: float) -> np.ndarray:
    cdf = _norm_cdf((np.log(LE_BOUNDS) - np.log(median)) / sigma)
    p = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return p / p.sum()


def fmt_values(arr: np.ndarray) -> list[str]:
    strs = [repr(v) for v in arr.tolist()]
    return [s[:-2] if s.endswith(".0") else s for s in strs]


def _series(metric: dict, ts: list[int], vals: list[str]) -> str:
    body = ",".join([f'[{t},"{v}"]' for t, v in zip(ts, vals, strict=True)])
    return '{"metric":' + json.dumps(metric, separators=(",", ":")) + ',"values":[' + body + "]}"


def _body(series: list[str]) -> str:
    return '{"status":"success","data":{"resultType":"matrix","result":[' + ",".join(series) + "]}}\n"


class PromData:
    def __init__(self, period: Period, outages: list[Outage], gap: ScrapeGap, rng: np.random.Generator):
        self.period = period
        t0 = period.cov_start - period.cov_start % DAY
        self.t = np.arange(t0, period.cov_end + 60, 60, dtype=np.int64)  # includes cov_end itself
        minute = self.t - 60
        n = len(self.t)
        self.present = np.ones(n, bool)
        g0 = (gap.start - t0) // 60
        self.present[g0: g0 + gap.minutes] = False
        self.down = np.zeros(n, bool)
        for o in outages:
            i0 = (o.start + 60 - t0) // 60
            self.down[i0: i0 + o.minutes] = True
        ist = minute + IST_OFFSET
        ist_day = ist // DAY
        sod = ist % DAY
        tdays = np.array([epoch_day_ist(d) for d in period.days], dtype=np.int64)
        self.session = np.isin(ist_day, tdays) & (sod >= 9 * 3600 + 900) & (sod < 15 * 3600 + 1800)
        # requests per minute: busy in the session, light overnight; thin during outages
        lam = np.where(self.session, 2400.0, 180.0)
        lam = np.where(self.down, lam * 0.25, lam)
        reqs = rng.poisson(lam)
        counts = np.empty((n, len(LE)), dtype=np.int64)
        ok = ~self.down
        counts[ok] = rng.multinomial(reqs[ok], bucket_probs(LAT_MEDIAN_S, LAT_SIGMA))
        if self.down.any():
            counts[self.down] = rng.multinomial(reqs[self.down], bucket_probs(1.5, 0.9))
        # cumulative bucket counts of the minute; the sample value is count × 4/3 (increase())
        self.lat_k = np.cumsum(counts, axis=1)
        err_lam = np.where(self.session, 0.6, 0.08)
        err_lam = np.where(self.down, 40.0, err_lam)
        self.err_k = rng.poisson(err_lam).astype(np.int64)
        top = int(max(self.lat_k.max(initial=0), self.err_k.max(initial=0)))
        self.table = fmt_values(np.round(np.arange(top + 1) * EXTRAPOLATION, 3))
        self.bad: dict | None = None

    def _fmt(self, ks: np.ndarray) -> list[str]:
        """Sample values of counts ``ks``; a negative count (the bad sample) is written as is."""
        if len(ks) and ks.min() < 0:
            return fmt_values(np.where(ks < 0, ks.astype(float), np.round(ks * EXTRAPOLATION, 3)))
        tab = self.table
        return [tab[k] for k in ks.tolist()]

    def make_bad_sample(self, rng: np.random.Generator) -> dict:
        """One negative bucket increase in the last review window (11:31 IST sample)."""
        lw = self.period.last_window
        target = lw.end - 4 * 3600 - 29 * 60 + 60 * int(rng.integers(0, 5))
        i = int((target - self.t[0]) // 60)
        j = LE.index(BAD_LE)
        self.lat_k[i, j] = -int(rng.integers(2, 9))
        ts = int(self.t[i])
        self.bad = {"source": "latency", "key": f"{BAD_LE}@{iso_z(ts)}", "ts": iso_z(ts), "le": BAD_LE,
                    "reason": "negative latency-bucket increase", "day": lw.day.isoformat()}
        return self.bad

    def write(self, out: Path) -> dict:
        base = out / "prometheus"
        for q in ("probe_success", "latency_buckets", "errors"):
            (base / q).mkdir(parents=True, exist_ok=True)
        t = self.t
        day_idx = (t - t[0]) // DAY
        files = 0
        order = sorted(range(len(LE)), key=lambda j: LE[j])  # label order, as Prometheus sorts
        for k in range(int(day_idx[-1]) + 1):
            sel = np.nonzero((day_idx == k) & self.present)[0]
            d: date = utc_date(int(t[0]) + k * DAY)
            ts = t[sel].tolist()
            probe = ["0" if x else "1" for x in self.down[sel].tolist()]
            (base / "probe_success" / f"{d.isoformat()}.json").write_text(
                _body([_series(PROBE_METRIC, ts, probe)] if ts else []))
            lat = [_series({"le": LE[j]}, ts, self._fmt(self.lat_k[sel, j])) for j in order] if ts else []
            (base / "latency_buckets" / f"{d.isoformat()}.json").write_text(_body(lat))
            (base / "errors" / f"{d.isoformat()}.json").write_text(
                _body([_series({}, ts, self._fmt(self.err_k[sel]))] if ts else []))
            files += 3
        return {"files": files}

    def window_stats(self) -> dict:
        """Per review window: probe samples, down samples, sum of the +Inf bucket and of
        errors, counting the samples whose timestamp is in [window start, window end)
        (the parser stores the sample timestamp as the row's ``ts``)."""
        out = {}
        for w in self.period.windows:
            m = (self.t >= w.start) & (self.t < w.end) & self.present
            out[w.day.isoformat()] = {
                "probe_minutes": int(m.sum()),
                "down_minutes": int((m & self.down).sum()),
                "requests": float(np.round(np.round(self.lat_k[m, -1] * EXTRAPOLATION, 3).sum(), 3)),
                "errors": float(np.round(np.round(self.err_k[m] * EXTRAPOLATION, 3).sum(), 3)),
            }
        return out
