//! Statistics for the LightRAG-vs-Perplexity experiment (docs/architecture.md#rollout-controller, docs/experiment.md):
//! does the treatment cohort (routed to LightRAG) do better or worse than the control cohort
//! (routed to Perplexity), and can we say so while the controller looks every minute?
//!
//! Why a module of its own, pure and hand-written: the controller runs these every minute in
//! the Worker and the report is served from there, so they must be small, allocation-light and
//! panic-free; and every function is checked against scipy / statsmodels reference values
//! pinned in `tests/reference/experiment.json` (script: `scripts/reference/experiment_reference.py`).
//!
//! What is here, one concern per file:
//!
//! - [`moments`]: mergeable sufficient statistics — [`Moments`] (n, mean, M2; Welford / Chan)
//!   and [`Proportion`] (successes of n).
//! - [`normal`], [`student_t`], [`special`]: Φ, Φ⁻¹, Student's t CDF / quantile, ln B and the
//!   regularised incomplete beta function (χ² comes from [`crate::core::stats`]).
//! - [`welch`]: Welch's t-test and the interval of the difference in means (latency, quality).
//! - [`proportions`]: the two-proportion z-test and the interval of the difference in rates.
//! - [`srm`]: sample-ratio mismatch, χ² against the split the rollout expects, flagged at
//!   p < 0.001.
//! - [`sequential`]: the **mSPRT** (mixture SPRT, normal mixing distribution; Johari et al.
//!   2017 / 2022) — always-valid p-values and intervals for both a difference in means and a
//!   difference in proportions, from the same sufficient statistics. The choice and its
//!   assumptions are explained there. [`memory`] carries its running minimum between looks.
//! - [`report`] and [`verdict`]: the `GET /admin/experiment` document and its one-line verdict.
//!
//! **Which test decides.** Only the sequential one: it stays valid however often it is read
//! (`tests/experiment_aa.rs`: 1,000 A/A experiments read every minute for a day). The Welch and
//! z-tests are reported as `fixed_horizon` for reference; re-running them every minute and
//! acting on p < 0.05 "finds" a difference in a large share of A/A experiments.
//!
//! **Arms are cohorts** (intention to treat), not upstreams: see [`report`].
//!
//! **What the metric windows must provide**, per arm (treatment / control cohort), summed over
//! the isolates' flushes for the period analysed (the current rollout stage, cumulative):
//!
//! | measure | fields | becomes |
//! |---|---|---|
//! | outcome | `count`, `successes` | [`Proportion::try_new`]`(successes, count)` |
//! | latency (ms, integer) | `count`, `latency_sum`, `latency_sum_sq` (u128 or u64) | [`Moments::from_integer_sums`]`(count, sum, sum_sq, 1.0)` |
//! | quality (millionths, scored answers only) | `quality_count`, `quality_sum`, `quality_sum_sq` | [`Moments::from_integer_sums`]`(quality_count, sum, sum_sq, 1e6)` |
//! | latency percentiles | the histogram's p50 / p95 | passed through to the report |
//!
//! Integer sums keep merging associative and exact, as `window::Stats::quality_sum` already is;
//! a sum of squares of ms latencies fits a u64 for ~5·10⁹ requests even at 60 s each (3.6·10⁹
//! ms² apiece); one of quality millionths (≤ 10¹² apiece) for 1.8·10⁷ scored answers, so keep
//! that one in a u128 (or as a decimal string in JSON). A window that merges [`Moments`]
//! directly (Chan's update) works too, at the cost of float (not exact) associativity.
//!
//! **Degenerate input never panics**: an empty arm, fewer than `min_samples_per_arm` requests,
//! a constant measure or a 0 % / 100 % split yields an [`Insufficient`] state with its reason.

pub mod insufficient;
pub mod memory;
pub mod moments;
pub mod normal;
pub mod proportions;
pub mod report;
pub mod sequential;
pub mod settings;
pub mod special;
pub mod srm;
pub mod student_t;
pub mod verdict;
pub mod welch;

pub use insufficient::Insufficient;
pub use memory::Carried;
pub use moments::{Moments, Proportion};
pub use proportions::{two_proportion_z_test, ProportionTest};
pub use report::{experiment_report, ArmSummary, ExperimentInput, ExperimentReport, Memory};
pub use sequential::{
    mixture_sprt, sequential_means, sequential_proportions, Evidence, SequentialTest,
};
pub use settings::{Alpha, ExperimentSettings};
pub use srm::{sample_ratio_mismatch, SampleRatio, SRM_P_THRESHOLD};
pub use welch::{welch_statistic, welch_t_test, WelchStatistic, WelchTest};
