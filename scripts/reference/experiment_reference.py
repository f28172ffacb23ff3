#!/usr/bin/env python3
"""Reference values for src/core/experiment, from independent packages.

Writes tests/reference/experiment.json, which tests/experiment_stats.rs checks the Rust
functions against. Every value comes from scipy / statsmodels (or, for the mSPRT, which they do
not implement, from the published closed form evaluated in 50-digit mpmath arithmetic and
cross-checked by numerical integration of the mixture likelihood ratio it abbreviates).

Re-generate with `make reference`, i.e. (the versions used are recorded in the JSON, and pinned
in requirements.txt next to this script; the output is byte-for-byte reproducible):

    python3 -m venv ~/.cache/cmo-edge-router/stats-venv
    ~/.cache/cmo-edge-router/stats-venv/bin/pip install -r scripts/reference/requirements.txt
    ~/.cache/cmo-edge-router/stats-venv/bin/python scripts/reference/experiment_reference.py

The mSPRT reference: Johari, Pekelis & Walsh, "Always valid inference: continuous monitoring
of A/B tests", Operations Research 70(3), 2022 (arXiv:1512.04922); Johari, Koomen, Pekelis &
Walsh, "Peeking at A/B tests", KDD 2017. With a normal mixing distribution H = N(theta0, tau^2)
and a difference estimate D ~ N(theta, V), the mixture likelihood ratio is

    Lambda = integral phi(D; theta, V) dH(theta) / phi(D; theta0, V)
           = sqrt(V / (V + tau^2)) * exp(tau^2 (D - theta0)^2 / (2 V (V + tau^2)))

which for n observations per arm with common variance sigma^2 (V = 2 sigma^2 / n) is the
paper's two-stream normal mSPRT. Always-valid p-value: min(1, 1/Lambda); the (1 - alpha)
interval is {theta0 : Lambda(theta0) < 1/alpha}.
"""

import json
import os
import platform
import sys
import warnings

import mpmath as mp
import numpy as np
import scipy
import scipy.special as sp
import scipy.stats as st
import statsmodels
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

mp.mp.dps = 50
ALPHA = 0.05
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "reference", "experiment.json")


def f(x):
    """A JSON-safe float (repr round-trips exactly)."""
    return float(x)


def moments(values):
    """n, mean, M2 computed in exact-enough arithmetic (mpmath) from float values."""
    xs = [mp.mpf(float(v)) for v in values]
    n = len(xs)
    mean = mp.fsum(xs) / n
    m2 = mp.fsum((x - mean) ** 2 for x in xs)
    return n, f(mean), f(m2)


# ---- distributions -----------------------------------------------------------------------
def normal_cases():
    xs = [-37.5, -20.0, -8.25, -5.0, -3.090232306167813, -1.959963984540054, -1.0, -0.3, -1e-9,
          0.0, 1e-9, 0.25, 0.5, 1.0, 1.6448536269514722, 2.5, 4.0, 6.0, 8.0]
    cdf = [{"x": x, "cdf": f(st.norm.cdf(x)), "sf": f(st.norm.sf(x))} for x in xs]
    ps = [1e-300, 1e-100, 1e-20, 1e-9, 1e-5, 0.001, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9,
          0.95, 0.975, 0.99, 0.999, 0.999999]
    ppf = [{"p": p, "quantile": f(st.norm.ppf(p))} for p in ps]
    return {"cdf": cdf, "quantile": ppf}


def student_t_cases():
    dfs = [0.5, 1.0, 2.0, 3.7, 9.0, 29.5, 100.0, 1234.56, 20000.0, 250000.0]
    ts = [-40.0, -6.0, -2.5, -1.0, -0.1, 0.0, 0.4, 1.0, 1.96, 2.5, 4.0, 12.0, 80.0]
    cdf = []
    for df in dfs:
        for t in ts:
            cdf.append({"t": t, "df": df, "cdf": f(st.t.cdf(t, df)), "sf": f(st.t.sf(t, df)),
                        "pdf": f(st.t.pdf(t, df))})
    ppf = []
    for df in dfs:
        for p in [1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 0.999999]:
            ppf.append({"p": p, "df": df, "quantile": f(st.t.ppf(p, df))})
    return {"cdf": cdf, "quantile": ppf}


def betainc_exact(a, b, x):
    """I_x(a, b) in 50 digits. Where even the leading term x^a (1-x)^b / (a B(a, b)) of the
    small side underflows a double, that side is 0 (mpmath's hypergeometric series gives up)."""
    a, b, x = mp.mpf(a), mp.mpf(b), mp.mpf(x)
    if x > a / (a + b):
        return 1 - betainc_exact(b, a, 1 - x)
    lead = a * mp.log(x) + b * mp.log(1 - x) - mp.log(mp.beta(a, b)) - mp.log(a)
    return mp.mpf(0) if lead < -745 else mp.betainc(a, b, 0, x, regularized=True)


def beta_cases():
    out = []
    for a, b in [(0.5, 0.5), (0.5, 3.0), (2.0, 0.5), (1.5, 7.25), (10.0, 10.0), (50.0, 0.5),
                 (0.5, 50.0), (200.0, 300.0), (5000.0, 0.5), (125000.0, 0.5)]:
        for x in [1e-8, 0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.99998, 0.999999]:
            # mpmath as the arbiter: scipy's betainc is good to ~1e-12 relative at extreme a.
            exact = betainc_exact(a, b, x)
            out.append({"a": a, "b": b, "x": x, "value": f(exact),
                        "scipy": f(sp.betainc(a, b, x))})
    lnb = [{"a": a, "b": b, "value": f(mp.log(mp.beta(a, b))), "scipy": f(sp.betaln(a, b))}
           for a, b in [(0.5, 0.5), (1.0, 1.0), (3.0, 4.5), (9.5, 10.5), (10.0, 10.0),
                        (0.5, 12.0), (12.0, 0.5), (30.0, 400.0), (125000.0, 0.5), (1e6, 2e6)]]
    return {"incomplete": out, "ln_beta": lnb}


# ---- tests ---------------------------------------------------------------------------------
def welch_cases(rng):
    out = []
    specs = [
        # (label, treatment sampler, control sampler)
        ("latency lognormal 25/75", lambda: rng.lognormal(np.log(1800), 0.5, 60),
         lambda: rng.lognormal(np.log(1700), 0.45, 180)),
        ("latency big arms", lambda: rng.lognormal(np.log(2100), 0.6, 4000),
         lambda: rng.lognormal(np.log(2000), 0.5, 12000)),
        ("quality similar", lambda: np.clip(rng.normal(0.75, 0.12, 45), 0, 1),
         lambda: np.clip(rng.normal(0.76, 0.10, 130), 0, 1)),
        ("tiny arms", lambda: np.array([1.0, 2.0, 4.0]), lambda: np.array([2.0, 3.5])),
        ("unequal variance", lambda: rng.normal(10, 1, 8), lambda: rng.normal(12, 6, 30)),
        ("one constant arm", lambda: np.array([5.0, 5.0, 5.0, 5.0]),
         lambda: rng.normal(6, 1, 20)),
    ]
    for label, gen_t, gen_c in specs:
        xt, xc = gen_t(), gen_c()
        nt, mt, m2t = moments(xt)
        nc, mc, m2c = moments(xc)
        with warnings.catch_warnings():
            # scipy warns about the constant arm's zero variance; that case is deliberate.
            warnings.simplefilter("ignore", RuntimeWarning)
            raw = st.ttest_ind(xt, xc, equal_var=False)
        stats = st.ttest_ind_from_stats(mt, np.sqrt(m2t / (nt - 1)), nt, mc,
                                        np.sqrt(m2c / (nc - 1)), nc, equal_var=False)
        cm = CompareMeans(DescrStatsW(xt), DescrStatsW(xc))
        lo, hi = cm.tconfint_diff(alpha=ALPHA, usevar="unequal")
        _, _, df = cm.ttest_ind(usevar="unequal")
        ci = raw.confidence_interval(confidence_level=1 - ALPHA)
        # The three routes must agree before their numbers become a reference.
        assert abs(raw.pvalue - stats.pvalue) <= 1e-9 * max(raw.pvalue, 1e-300), label
        assert abs(ci.low - lo) <= 1e-9 * abs(lo) + 1e-12 and abs(ci.high - hi) <= 1e-9 * abs(hi) + 1e-12, label
        out.append({"label": label,
                    "treatment": {"n": nt, "mean": mt, "m2": m2t},
                    "control": {"n": nc, "mean": mc, "m2": m2c},
                    "difference": f(mt - mc), "t": f(stats.statistic), "df": f(df),
                    "p_value": f(stats.pvalue), "ci_low": f(lo), "ci_high": f(hi)})
    return out


def proportion_cases():
    out = []
    for label, (st_, nt, sc, nc) in [
        ("success 25/75 similar", (194, 200, 588, 600)),
        ("success lower in treatment", (930, 1000, 2910, 3000)),
        ("big arms tiny difference", (48_600, 50_000, 145_950, 150_000)),
        ("no failures in treatment", (40, 40, 117, 120)),
        ("small arms", (3, 5, 1, 4)),
        ("all fail vs some", (0, 30, 5, 90)),
    ]:
        z, p = proportions_ztest([st_, sc], [nt, nc], value=0, alternative="two-sided")
        lo, hi = confint_proportions_2indep(st_, nt, sc, nc, method="wald", compare="diff",
                                            alpha=ALPHA)
        out.append({"label": label, "treatment": {"successes": st_, "n": nt},
                    "control": {"successes": sc, "n": nc},
                    "difference": f(st_ / nt - sc / nc), "z": f(z), "p_value": f(p),
                    "ci_low": f(lo), "ci_high": f(hi)})
    return out


def srm_cases():
    out = []
    for t, c, share in [(2500, 7500, 0.25), (2600, 7400, 0.25), (2710, 7290, 0.25),
                        (52, 48, 0.5), (5300, 4700, 0.5), (11, 989, 0.01), (30, 970, 0.05),
                        (0, 100, 0.25)]:
        n = t + c
        chi, p = st.chisquare([t, c], f_exp=[n * share, n * (1 - share)])
        out.append({"treatment": t, "control": c, "share": share, "chi_square": f(chi),
                    "p_value": f(p), "mismatch": bool(p < 0.001)})
    return out


# ---- mSPRT ---------------------------------------------------------------------------------
def msprt_closed_form(D, V, tau2, theta0=0):
    D, V, tau2, theta0 = (mp.mpf(D), mp.mpf(V), mp.mpf(tau2), mp.mpf(theta0))
    return mp.log(mp.sqrt(V / (V + tau2))) + tau2 * (D - theta0) ** 2 / (2 * V * (V + tau2))


def msprt_by_integration(D, V, tau2, theta0=0):
    """ln of the mixture likelihood ratio, integrating over the mixing distribution."""
    D, V, tau2, theta0 = (mp.mpf(D), mp.mpf(V), mp.mpf(tau2), mp.mpf(theta0))
    lik = lambda th: mp.npdf(D, th, mp.sqrt(V))
    mix = lambda th: mp.npdf(th, theta0, mp.sqrt(tau2))
    s = mp.sqrt(tau2)
    # The integrand is a product of two Gaussians; integrate over a wide window split at the mode.
    centre = (D * tau2 + theta0 * V) / (V + tau2)
    width = mp.sqrt(V * tau2 / (V + tau2))
    num = mp.quad(lambda th: lik(th) * mix(th),
                  [centre - 40 * width, centre - 5 * width, centre, centre + 5 * width,
                   centre + 40 * width])
    return mp.log(num / lik(theta0))


def msprt_entry(label, D, V, tau2):
    llr = msprt_closed_form(D, V, tau2)
    llr_int = msprt_by_integration(D, V, tau2)
    assert abs(llr - llr_int) < mp.mpf("1e-20") * max(1, abs(llr)), (label, llr, llr_int)
    thr = mp.log(1 / mp.mpf(ALPHA))
    V_, t_ = mp.mpf(V), mp.mpf(tau2)
    half = mp.sqrt(2 * V_ * (V_ + t_) / t_ * (thr + mp.log(mp.sqrt((V_ + t_) / V_))))
    # The interval's ends are exactly where Lambda = 1/alpha (checked on the closed form).
    for end in (mp.mpf(D) - half, mp.mpf(D) + half):
        assert abs(msprt_closed_form(D, V, tau2, end) - thr) < mp.mpf("1e-30")
    p = min(mp.mpf(1), mp.e ** (-llr))
    return {"label": label, "estimate": f(D), "variance": f(V), "mixing_variance": f(tau2),
            "log_likelihood_ratio": f(llr), "p_value": f(p), "ci_low": f(mp.mpf(D) - half),
            "ci_high": f(mp.mpf(D) + half), "significant": bool(llr >= thr)}


def msprt_cases(rng):
    direct = [
        msprt_entry("null estimate", 0.0, 1e-4, 1e-3),
        msprt_entry("weak evidence", 0.01, 1e-4, 4e-4),
        msprt_entry("strong evidence", -0.03, 2e-5, 3e-4),
        msprt_entry("latency ms", 140.0, 900.0, 2500.0),
        msprt_entry("tau much smaller than V", 0.5, 1.0, 1e-6),
        msprt_entry("tau much larger than V", 0.004, 1e-6, 10.0),
    ]
    # Johari et al.'s two-stream form for n per arm and a known common sigma^2 is the same number.
    n, sigma2, tau2, diff = 500, mp.mpf("0.04"), mp.mpf("0.001"), mp.mpf("0.03")
    johari = (mp.log(mp.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)))
              + n ** 2 * tau2 * mp.mpf(diff) ** 2 / (4 * sigma2 * (2 * sigma2 + n * tau2)))
    general = msprt_closed_form(diff, 2 * sigma2 / n, tau2)
    assert abs(johari - general) < mp.mpf("1e-40")
    direct.append(msprt_entry("two-stream equal n", diff, 2 * sigma2 / n, tau2))

    # From sufficient statistics, as the Rust wrappers compute them (d = 0.1 standardised).
    d = 0.1
    means = []
    for label, xt, xc in [
        ("latency", rng.lognormal(np.log(1900), 0.5, 800), rng.lognormal(np.log(1800), 0.5, 2400)),
        ("quality", np.clip(rng.normal(0.72, 0.12, 300), 0, 1), np.clip(rng.normal(0.75, 0.12, 900), 0, 1)),
    ]:
        nt, mt, m2t = moments(xt)
        nc, mc, m2c = moments(xc)
        vt, vc = mp.mpf(m2t) / (nt - 1), mp.mpf(m2c) / (nc - 1)
        V = vt / nt + vc / nc
        pooled = (mp.mpf(m2t) + mp.mpf(m2c)) / (nt + nc - 2)
        e = msprt_entry(label, mp.mpf(mt) - mp.mpf(mc), V, d * d * pooled)
        e.update({"treatment": {"n": nt, "mean": mt, "m2": m2t},
                  "control": {"n": nc, "mean": mc, "m2": m2c}})
        means.append(e)
    props = []
    for label, (s1, n1, s2, n2) in [("success 25/75", (1455, 1500, 4410, 4500)),
                                    ("success lower", (930, 1000, 2910, 3000)),
                                    ("no failures in treatment", (60, 60, 175, 180))]:
        p1, p2 = mp.mpf(s1) / n1, mp.mpf(s2) / n2
        p = mp.mpf(s1 + s2) / (n1 + n2)
        pooled = p * (1 - p) * (mp.mpf(1) / n1 + mp.mpf(1) / n2)
        unpooled = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        e = msprt_entry(label, p1 - p2, max(pooled, unpooled), d * d * p * (1 - p))
        e.update({"treatment": {"successes": s1, "n": n1}, "control": {"successes": s2, "n": n2}})
        props.append(e)
    return {"direct": direct, "means": means, "proportions": props, "mixing_effect_size": d}


def main():
    rng = np.random.default_rng(20261124)
    doc = {
        "generated_by": "scripts/reference/experiment_reference.py",
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
                     "mpmath": mp.__version__},
        "alpha": ALPHA,
        "normal": normal_cases(),
        "student_t": student_t_cases(),
        "beta": beta_cases(),
        "welch": welch_cases(rng),
        "proportions": proportion_cases(),
        "srm": srm_cases(),
        "msprt": msprt_cases(rng),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"wrote {os.path.relpath(OUT)} with", {k: len(v) if isinstance(v, list) else "…"
                                                  for k, v in doc.items()}, file=sys.stderr)


if __name__ == "__main__":
    main()
