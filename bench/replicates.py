#!/usr/bin/env python3
"""How many replicates does each target's scale need, and what would fewer save?

Reads the reports of a `lth repro --all` run (`<out>/summary.md` and `<out>/<target>/<scale>/
results.csv`) and, for every cell that passed, finds the smallest number of replicates n' at
which it would still pass with the given probability (power), taking the run's own estimates as
the truth:

- a claim (a one-sided test over replicates, at Holm's strictest level α/m for its target's m
  claims): its t statistic scales by sqrt(n'/n) and its degrees of freedom by (n'-1)/(n-1); power
  is the noncentral t's tail beyond the critical value;
- a snapshot cell (equivalence of the paired difference to the recorded snapshot, 90% interval
  inside ±margin): the run's difference and its spread (from the printed interval) stand for what
  another machine's rerun gives; power is the chance that the interval falls inside the margin,
  and the margin must also hold the harness's rule, width >= 2·t·SE of the recorded spread at n'.

A target needs the largest n' of its passing cells (cells already INCONCLUSIVE or FAIL need more
replicates, not fewer, and are counted apart). Its time is scaled by n'/n: an upper bound on the
saving, since shared units and fixed costs are ignored. Observed effects of passing claims are
biased upward (they passed), so the true n' is if anything larger.

Usage: python3 bench/replicates.py <out folder> [scale] (default scale: quick). Needs SciPy
(`python3 -m venv v && v/bin/pip install scipy`).
"""

import csv
import glob
import math
import os
import re
import sys

try:
    from scipy import stats
except ImportError:
    sys.exit("bench/replicates.py needs SciPy: python3 -m venv v && v/bin/pip install scipy")


def claim_power(t_obs, df, n, n2, alpha):
    df2 = max(1.0, df * (n2 - 1) / (n - 1))
    if math.isinf(t_obs):
        return 1.0
    return stats.nct.sf(stats.t.isf(alpha, df2), df2, t_obs * math.sqrt(n2 / n))


def equivalence_power(d, sigma, width, n2):
    if sigma == 0:
        return 1.0 if abs(d) < width else 0.0
    se = sigma / math.sqrt(n2)
    half = stats.t.ppf(0.95, n2 - 1) * se
    if half >= width:
        return 0.0
    return stats.norm.cdf((width - half - d) / se) - stats.norm.cdf((-width + half - d) / se)


def welch_df(detail):
    """Welch–Satterthwaite degrees of freedom of the two arms printed as `m ± sd (n=k)`."""
    (s1, n1), (s2, n2) = (
        (float(a), int(b)) for a, b in re.findall(r"± ([0-9.]+) \(n=(\d+)\)", detail)[:2]
    )
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0:
        return math.inf
    return (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))


def smallest(passes):
    n2 = 2
    while n2 < 1000 and not passes(n2):
        n2 += 1
    return n2


def needs(row, power):
    """The smallest n' at which a passing cell passes with probability `power`."""
    n, detail = int(row["ours_n"]), row["detail"]
    if row["source"] == "claim":
        m = re.search(r"Holm-adjusted over (\d+) claims?.*\(α = ([0-9.]+)\)", detail)
        level = float(m.group(2)) / int(m.group(1))
        df = re.search(r"df = ([0-9.]+|inf)", detail)
        df = float(df.group(1)) if df else welch_df(detail)  # a `within` claim prints no df
        p = re.search(r"p (=|<) ([0-9.e+-]+) for", detail)
        t_obs = (
            math.inf if p.group(1) == "<" or math.isinf(df) else stats.t.isf(float(p.group(2)), df)
        )
        return smallest(lambda n2: claim_power(t_obs, df, n, n2, level) >= power)
    m = re.search(
        r"difference ([+-][0-9.]+), paired over \d+ replicates, 90% CI "
        r"\[([+-][0-9.]+), ([+-][0-9.]+)\] inside ±([0-9.]+)",
        detail,
    )
    d, lo, hi, width = (float(m.group(i)) for i in (1, 2, 3, 4))
    sigma = (hi - lo) / 2 / stats.t.ppf(0.95, n - 1) * math.sqrt(n)
    recorded = float(row["reference_spread"] or 0)
    return smallest(
        lambda n2: (
            equivalence_power(d, sigma, width, n2) >= power
            and 2 * stats.t.ppf(0.95, n2 - 1) * recorded / math.sqrt(n2) <= width
        )
    )


def cell(row):
    """A cell's name: row · metric, and a claim's check (a metric has a snapshot cell too)."""
    name = f"{row['row']} · {row['metric']}"
    return name if row["source"] != "claim" else f"{name} [{row['check']}]"


def seconds(text):
    h, m, s = (
        int(x or 0) for x in re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text).groups()
    )
    return 3600 * h + 60 * m + s


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: bench/replicates.py <out folder of lth repro --all> [scale]")
    out, scale = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "quick"
    if not os.path.isfile(os.path.join(out, "summary.md")):
        sys.exit(f"{out}: no summary.md there; give the --out folder of `lth repro --all`")
    times = {}
    with open(os.path.join(out, "summary.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        cols = [c.strip() for c in line.split("|")]
        if len(cols) > 8 and re.fullmatch(r"(\d+h)?(\d+m)?\d+s", cols[8]):
            times[cols[1]] = seconds(cols[8])
    levels = (0.8, 0.5)
    print(
        "| target | time | replicates | needed at 80% power (binding cell) | at 50% | passing cells | other claims and snapshots |"
    )
    print("|---|---|---|---|---|---|---|")
    total, scaled = 0, dict.fromkeys(levels, 0.0)
    for path in sorted(glob.glob(os.path.join(out, "*", scale, "results.csv"))):
        target = path.split(os.sep)[-3]
        with open(path, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["outcome"] != "SKIPPED" and r["ours_n"]]
        passing = [r for r in rows if r["outcome"] == "PASS"]
        if not passing:
            continue
        n = max(int(r["ours_n"]) for r in rows)
        need = {lv: {cell(r): needs(r, lv) for r in passing} for lv in levels}
        binding = max(need[0.8], key=need[0.8].get)
        t = times.get(target, 0)
        total += t
        for lv in levels:
            scaled[lv] += t * min(1.0, max(need[lv].values()) / n)
        print(
            f"| {target} | {t // 60}m{t % 60:02d}s | {n} | {need[0.8][binding]} ({binding}) | "
            f"{max(need[0.5].values())} | {len(passing)} | {len(rows) - len(passing)} |"
        )
    print(
        f"\nThe targets' times sum to {total / 60:.1f} min; with each target at the replicates its "
        f"passing cells need: {scaled[0.8] / 60:.1f} min at 80% power, {scaled[0.5] / 60:.1f} min "
        "at 50% (time scaled by n'/n, where n' < n)."
    )


if __name__ == "__main__":
    main()
