//! A/A and power simulations of the experiment statistics, looked at every minute for a day.
//!
//! What this proves: the controller reads the experiment every minute (1,440 looks a day) and
//! acts on the first significant result. With the sequential test (mSPRT) the chance that an
//! A/A experiment — LightRAG and Perplexity identical — is ever declared different stays at or
//! below α = 5 %; a fixed-horizon test re-run at every look does far worse; and a real effect
//! is still found within the day.
//!
//! Traffic model (one experiment = one simulated day): requests arrive as a Poisson process
//! whose rate follows the day, 20 requests/minute on average (8 at night, 32 at the peak;
//! ≈ 28,800 a day; an assumed load, not a measurement of the Oracle's traffic), and each goes to the
//! treatment arm with probability 0.25 (a 25 % rollout). Per request: success with
//! probability 0.97; latency with mean 2,040 ms and sd 1,090 ms; 60 % of successful answers
//! are scored, with quality mean 0.75 and sd 0.12. Every minute the new requests' sufficient
//! statistics are merged into each arm's totals (as the controller merges isolate flushes) and
//! every test is run on the totals.
//!
//! Two fidelity levels, same tests:
//! - `cargo test` (default): each minute's per-arm statistics are drawn from their exact
//!   sampling distributions (counts binomial, latency and quality normal: minute mean
//!   ~ N(μ, σ²/n), M2 ~ σ²χ²ₙ₋₁), so 1,000 experiments run in seconds in a debug build;
//! - `make aa` (`AA_PER_REQUEST=1`, release): every request drawn one by one, latency
//!   log-normal (right-skewed like real LLM latency), quality clipped to [0, 1].
//!
//! Randomness: proptest's seeded `TestRng` with its XorShift algorithm (`rand_xorshift`, already
//! in the lockfile), one seed per experiment, so every number printed is reproducible. Its
//! ChaCha20 option made the debug-build run several times slower for no gain at this scale.
//! The distribution transforms below (Box–Muller, Poisson and binomial by inversion,
//! Marsaglia–Tsang gamma) are checked by `samplers_have_the_right_moments`.

use cmo_edge_router::core::experiment::{
    sequential_means, sequential_proportions, two_proportion_z_test, welch_statistic,
    ExperimentSettings, Moments, Proportion,
};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

const MINUTES: u32 = 1_440;
const METRICS: [&str; 3] = ["success rate", "mean latency", "mean quality"];

// ---- distribution transforms over a seeded XorShift stream ----------------------------------

struct Draw(TestRng);

impl Draw {
    fn new(stream: u64, experiment: u64) -> Draw {
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&stream.to_le_bytes());
        seed[8..12].copy_from_slice(&(experiment as u32).to_le_bytes());
        seed[12..].copy_from_slice(b"cmo!");
        Draw(TestRng::from_seed(RngAlgorithm::XorShift, &seed))
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        1.0 - self.0.random::<f64>()
    }

    fn bernoulli(&mut self, p: f64) -> bool {
        self.0.random::<f64>() < p
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.unit().ln()).sqrt();
        r * (2.0 * std::f64::consts::PI * self.0.random::<f64>()).cos()
    }

    /// Poisson(λ) by inversion (λ here is at most a few dozen).
    fn poisson(&mut self, lambda: f64) -> u64 {
        let u = self.0.random::<f64>();
        let (mut k, mut p) = (0u64, (-lambda).exp());
        let mut cdf = p;
        while u > cdf && k < 10_000 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    }

    /// Binomial(n, p) by inversion on the rarer outcome.
    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        if n == 0 || p <= 0.0 {
            return 0;
        }
        let u = self.0.random::<f64>();
        let ratio = p / (1.0 - p);
        let (mut k, mut pmf) = (0u64, (1.0 - p).powf(n as f64));
        let mut cdf = pmf;
        while u > cdf && k < n {
            pmf *= (n - k) as f64 / (k + 1) as f64 * ratio;
            k += 1;
            cdf += pmf;
        }
        k
    }

    /// Gamma(shape, 1) (Marsaglia & Tsang 2000; shape < 1 by the u^{1/a} boost).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.unit().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            if self.unit().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    fn chi_square(&mut self, df: f64) -> f64 {
        2.0 * self.gamma(df / 2.0)
    }
}

// ---- the world ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct ArmTruth {
    success: f64,
    latency_mean: f64,
    latency_sd: f64,
    scored_share: f64,
    quality_mean: f64,
    quality_sd: f64,
}

const BASELINE: ArmTruth = ArmTruth {
    success: 0.97,
    latency_mean: 2_040.0,
    latency_sd: 1_090.0,
    scored_share: 0.6,
    quality_mean: 0.75,
    quality_sd: 0.12,
};

#[derive(Clone, Copy)]
struct World {
    treatment: ArmTruth,
    control: ArmTruth,
    treatment_share: f64,
    mean_rate: f64,
    per_request: bool,
}

#[derive(Default, Clone, Copy)]
struct Arm {
    outcomes: Proportion,
    latency: Moments,
    quality: Moments,
}

/// Moments of `n` iid normals, drawn exactly: the mean ~ N(μ, σ²/n), M2 ~ σ²χ²ₙ₋₁, independent.
fn normal_moments(d: &mut Draw, n: u64, mean: f64, sd: f64) -> Moments {
    if n == 0 {
        return Moments::EMPTY;
    }
    let m = mean + sd / (n as f64).sqrt() * d.normal();
    let m2 = if n > 1 {
        sd * sd * d.chi_square((n - 1) as f64)
    } else {
        0.0
    };
    Moments::try_new(n, m, m2).unwrap()
}

/// One minute of one arm with `n` requests.
fn minute(d: &mut Draw, n: u64, truth: &ArmTruth, per_request: bool) -> Arm {
    let mut arm = Arm::default();
    if per_request {
        let s2 = (1.0 + (truth.latency_sd / truth.latency_mean).powi(2)).ln();
        let mu = truth.latency_mean.ln() - s2 / 2.0;
        for _ in 0..n {
            let ok = d.bernoulli(truth.success);
            arm.outcomes.record(ok);
            arm.latency.push((mu + s2.sqrt() * d.normal()).exp());
            if ok && d.bernoulli(truth.scored_share) {
                let q = truth.quality_mean + truth.quality_sd * d.normal();
                arm.quality.push(q.clamp(0.0, 1.0));
            }
        }
    } else {
        let successes = d.binomial(n, truth.success);
        arm.outcomes = Proportion::try_new(successes, n).unwrap();
        arm.latency = normal_moments(d, n, truth.latency_mean, truth.latency_sd);
        let scored = d.binomial(successes, truth.scored_share);
        arm.quality = normal_moments(d, scored, truth.quality_mean, truth.quality_sd);
    }
    arm
}

fn merge(total: &mut Arm, add: &Arm) {
    total.outcomes.merge(&add.outcomes);
    total.latency.merge(&add.latency);
    total.quality.merge(&add.quality);
}

/// First minute (1-based) at which each method called each metric significant.
#[derive(Default, Clone, Copy)]
struct FirstRejection {
    sequential: [Option<u32>; 3],
    naive_every_look: [Option<u32>; 3],
    /// The naive test read once, at the end of the day (its one valid use).
    naive_final_look: [bool; 3],
    /// The sign of the sequential test's estimate when it first rejected.
    sequential_sign: [f64; 3],
}

fn run_day(world: &World, stream: u64, experiment: u64) -> FirstRejection {
    let settings = ExperimentSettings::default();
    let alpha = settings.alpha();
    let mut d = Draw::new(stream, experiment);
    let (mut t, mut c) = (Arm::default(), Arm::default());
    let mut out = FirstRejection::default();
    for m in 0..MINUTES {
        let phase = 2.0 * std::f64::consts::PI * f64::from(m) / f64::from(MINUTES);
        let rate = world.mean_rate * (1.0 - 0.6 * phase.cos());
        let total = d.poisson(rate);
        let nt = d.binomial(total, world.treatment_share);
        merge(
            &mut t,
            &minute(&mut d, nt, &world.treatment, world.per_request),
        );
        merge(
            &mut c,
            &minute(&mut d, total - nt, &world.control, world.per_request),
        );

        let min = settings.min_samples_per_arm();
        let sequential = [
            sequential_proportions(&t.outcomes, &c.outcomes, &settings),
            sequential_means(&t.latency, &c.latency, &settings),
            sequential_means(&t.quality, &c.quality, &settings),
        ];
        let enough = [
            t.outcomes.n() >= min && c.outcomes.n() >= min,
            t.latency.n() >= min && c.latency.n() >= min,
            t.quality.n() >= min && c.quality.n() >= min,
        ];
        for (i, test) in sequential.iter().enumerate() {
            if let (None, Ok(s)) = (out.sequential[i], test) {
                if s.significant {
                    out.sequential[i] = Some(m + 1);
                    out.sequential_sign[i] = s.difference.signum();
                }
            }
        }
        let last = m + 1 == MINUTES;
        for (i, &enough) in enough.iter().enumerate() {
            if !enough || (out.naive_every_look[i].is_some() && !last) {
                continue;
            }
            let p = match i {
                0 => two_proportion_z_test(&t.outcomes, &c.outcomes, alpha).map(|z| z.p_value),
                1 => welch_statistic(&t.latency, &c.latency).map(|w| w.p_value()),
                _ => welch_statistic(&t.quality, &c.quality).map(|w| w.p_value()),
            };
            if let Ok(p) = p {
                if p < alpha.get() {
                    out.naive_every_look[i].get_or_insert(m + 1);
                    if last {
                        out.naive_final_look[i] = true;
                    }
                }
            }
        }
    }
    out
}

struct Summary {
    experiments: usize,
    sequential: [usize; 4],
    naive_every_look: [usize; 4],
    naive_final_look: [usize; 4],
    median_detection_minute: [Option<u32>; 3],
    wrong_sign: [usize; 3],
}

fn summarise(days: &[FirstRejection]) -> Summary {
    let count = |f: &dyn Fn(&FirstRejection, usize) -> bool| {
        let mut c = [0usize; 4];
        for day in days {
            let mut any = false;
            for (i, slot) in c.iter_mut().take(3).enumerate() {
                if f(day, i) {
                    *slot += 1;
                    any = true;
                }
            }
            if any {
                c[3] += 1;
            }
        }
        c
    };
    let mut median = [None; 3];
    let mut wrong_sign = [0; 3];
    for (i, slot) in median.iter_mut().enumerate() {
        let mut minutes: Vec<u32> = days.iter().filter_map(|d| d.sequential[i]).collect();
        minutes.sort_unstable();
        *slot = minutes.get(minutes.len() / 2).copied();
        wrong_sign[i] = days
            .iter()
            .filter(|d| d.sequential[i].is_some() && d.sequential_sign[i] > 0.0)
            .count();
    }
    Summary {
        experiments: days.len(),
        sequential: count(&|d, i| d.sequential[i].is_some()),
        naive_every_look: count(&|d, i| d.naive_every_look[i].is_some()),
        naive_final_look: count(&|d, i| d.naive_final_look[i]),
        median_detection_minute: median,
        wrong_sign,
    }
}

fn pct(k: usize, n: usize) -> f64 {
    100.0 * k as f64 / n as f64
}

fn print_table(title: &str, s: &Summary) {
    println!("\n{title}");
    println!(
        "{:<17} {:>22} {:>26} {:>22}",
        "", "sequential (mSPRT)", "naive test, every look", "naive, one final look"
    );
    let names = [METRICS[0], METRICS[1], METRICS[2], "any of the three"];
    for (i, name) in names.iter().enumerate() {
        println!(
            "{:<17} {:>21.1}% {:>25.1}% {:>21.1}%",
            name,
            pct(s.sequential[i], s.experiments),
            pct(s.naive_every_look[i], s.experiments),
            pct(s.naive_final_look[i], s.experiments),
        );
    }
}

fn world(per_request: bool) -> World {
    World {
        treatment: BASELINE,
        control: BASELINE,
        treatment_share: env_share("AA_TREATMENT_SHARE", 0.25),
        mean_rate: 20.0,
        per_request,
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn env_share(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s > 0.0 && *s < 1.0)
        .unwrap_or(default)
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 1,000 A/A days, 1,440 looks each.
#[test]
fn aa_false_positive_rate_under_continuous_monitoring() {
    let per_request = env_flag("AA_PER_REQUEST");
    let n = env_count("AA_EXPERIMENTS", 1_000);
    let w = world(per_request);
    let days: Vec<FirstRejection> = (0..n as u64).map(|e| run_day(&w, 1, e)).collect();
    let s = summarise(&days);
    print_table(
        &format!(
            "A/A: {n} experiments x {MINUTES} looks (every minute for 24 h), ~20 req/min, {:.0} % in treatment, alpha = 0.05, {} -- share of experiments ever declared different",
            100.0 * w.treatment_share,
            if per_request { "per-request draws (log-normal latency)" } else { "per-minute sufficient statistics" }
        ),
        &s,
    );
    // Binomial sampling tolerance: with 1,000 experiments the sd of a 5 % rate is 0.7 points,
    // so 6.5 % is 2.2 sd above α; with fewer (AA_EXPERIMENTS) the bound widens accordingly.
    let tolerance = 5.0 + 2.2 * (5.0 * 95.0 / n as f64).sqrt();
    for (i, metric) in METRICS.iter().enumerate() {
        let seq = pct(s.sequential[i], n);
        let naive = pct(s.naive_every_look[i], n);
        assert!(
            seq <= tolerance,
            "{metric}: sequential false-positive rate {seq:.1} % > {tolerance:.1} %"
        );
        assert!(
            naive > 2.0 * seq.max(5.0),
            "{metric}: the naive test re-run every minute should do far worse than α (got {naive:.1} %)"
        );
        // Read once, at the end, the fixed-horizon test is calibrated: the inflation above is
        // the looking, not the test.
        let once = pct(s.naive_final_look[i], n);
        assert!(
            once <= tolerance + 1.5,
            "{metric}: fixed-horizon at one look {once:.1} %"
        );
    }
}

/// A real effect is found within the day, in the right direction.
#[test]
fn sequential_test_detects_real_effects() {
    let per_request = env_flag("AA_PER_REQUEST");
    let n = env_count("AA_POWER_EXPERIMENTS", 200);
    let worse = ArmTruth {
        success: 0.95,
        latency_mean: BASELINE.latency_mean * 1.15,
        quality_mean: BASELINE.quality_mean - 0.04,
        ..BASELINE
    };
    let w = World {
        treatment: worse,
        ..world(per_request)
    };
    let days: Vec<FirstRejection> = (0..n as u64).map(|e| run_day(&w, 2, e)).collect();
    let s = summarise(&days);
    print_table(
        &format!(
            "Power: {n} experiments, LightRAG success 95 % vs 97 %, latency +15 %, quality -0.04 -- share detected within 24 h"
        ),
        &s,
    );
    for (metric, median) in METRICS.iter().zip(s.median_detection_minute) {
        println!("{metric}: median minute of detection (sequential) = {median:?}");
    }
    // Success and quality are lower in treatment (negative difference); latency is higher.
    for (metric, &hits) in METRICS.iter().zip(&s.sequential) {
        let detected = pct(hits, n);
        assert!(
            detected >= 95.0,
            "{metric}: detected in only {detected:.1} % of days"
        );
    }
    assert_eq!(
        s.wrong_sign[0], 0,
        "success-rate drop detected as an increase"
    );
    assert_eq!(s.wrong_sign[2], 0, "quality drop detected as an increase");
    assert_eq!(
        s.wrong_sign[1], s.sequential[1],
        "latency increase detected as a decrease"
    );
}

/// The transforms produce the moments they should (so the worlds above are the ones described).
#[test]
fn samplers_have_the_right_moments() {
    let mut d = Draw::new(99, 0);
    let n = 200_000;
    let mean_var = |xs: &[f64]| {
        let m = Moments::from_values(xs);
        (m.mean().unwrap(), m.variance().unwrap())
    };
    let normals: Vec<f64> = (0..n).map(|_| d.normal()).collect();
    let (m, v) = mean_var(&normals);
    assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.01, "normal {m} {v}");
    let pois: Vec<f64> = (0..n).map(|_| d.poisson(12.5) as f64).collect();
    let (m, v) = mean_var(&pois);
    assert!(
        (m - 12.5).abs() < 0.05 && (v - 12.5).abs() < 0.2,
        "poisson {m} {v}"
    );
    let bin: Vec<f64> = (0..n).map(|_| d.binomial(30, 0.97) as f64).collect();
    let (m, v) = mean_var(&bin);
    assert!(
        (m - 29.1).abs() < 0.01 && (v - 0.873).abs() < 0.02,
        "binomial {m} {v}"
    );
    for df in [1.0, 4.0, 29.0] {
        let chi: Vec<f64> = (0..n).map(|_| d.chi_square(df)).collect();
        let (m, v) = mean_var(&chi);
        assert!(
            (m - df).abs() < 0.02 * df.max(1.0) && (v - 2.0 * df).abs() < 0.05 * 2.0 * df,
            "chi2({df}) {m} {v}"
        );
    }
}
