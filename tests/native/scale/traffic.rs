//! Who asks, from where, when: users spread over Cloudflare locations in several time zones,
//! each location's traffic following its local day, each user's share following a heavy tail.
//!
//! Why this shape: the fleet's behaviour depends on how requests fall on isolates. A location
//! at night sends few requests, so its isolates go minutes without one and hold state older
//! than the refresh interval; a handful of heavy users hit the per-key caps; the rest ask a few
//! questions a day. The numbers are assumptions, stated here once:
//!
//! - 12 locations with the share of users below (the chat app's users: North America and
//!   Europe first, then Asia-Pacific, South America, India), each with its UTC offset.
//! - Diurnal rate: `1 + 0.8·cos(2π(h − 14)/24)` at local hour `h` (peak 14:00, trough 02:00,
//!   one ninth of the peak), mean 1 over a day.
//! - Users: a fixed population, each with a home location (by share) and an activity weight
//!   `rank^-0.5` (the most active user sends ~0.2 % of all requests).
//! - Arrivals: a Poisson process at the month's average rate times the diurnal factors, drawn
//!   by thinning from one seeded generator.

use cmo_edge_router::core::fleet::Rng;

/// (name, UTC offset in hours, share of users).
pub const LOCATIONS: [(&str, f64, f64); 12] = [
    ("IAD", -5.0, 0.18),
    ("ORD", -6.0, 0.10),
    ("SFO", -8.0, 0.12),
    ("LHR", 0.0, 0.12),
    ("FRA", 1.0, 0.10),
    ("AMS", 1.0, 0.05),
    ("CDG", 1.0, 0.05),
    ("NRT", 9.0, 0.07),
    ("SIN", 8.0, 0.06),
    ("SYD", 10.0, 0.04),
    ("GRU", -3.0, 0.04),
    ("BOM", 5.5, 0.07),
];

const DAY_MS: f64 = 86_400_000.0;

/// The diurnal factor at `utc_ms` for a location `offset_h` hours from UTC.
pub fn diurnal(utc_ms: u64, offset_h: f64) -> f64 {
    let h = ((utc_ms as f64 / 3_600_000.0) + offset_h).rem_euclid(24.0);
    1.0 + 0.8 * (std::f64::consts::TAU * (h - 14.0) / 24.0).cos()
}

/// One request's arrival.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at_ms: u64,
    pub location: usize,
    pub user: u32,
}

/// The users and the arrival process.
pub struct Traffic {
    rng: Rng,
    /// Requests per ms, averaged over a day.
    mean_rate: f64,
    next_candidate_ms: f64,
    /// Per location: cumulative activity weights of its users, and the users.
    users_by_location: Vec<(Vec<f64>, Vec<u32>)>,
}

impl Traffic {
    /// `monthly_requests` spread over a 30-day month, `users` users, starting at `start_ms`.
    pub fn new(seed: u64, users: u32, monthly_requests: f64, start_ms: u64) -> Traffic {
        let mut rng = Rng::new(seed);
        let mut users_by_location = vec![(Vec::new(), Vec::new()); LOCATIONS.len()];
        for u in 0..users {
            let roll = rng.roll();
            let mut acc = 0.0;
            let mut home = LOCATIONS.len() - 1;
            for (i, (_, _, share)) in LOCATIONS.iter().enumerate() {
                acc += share;
                if roll < acc {
                    home = i;
                    break;
                }
            }
            let weight = f64::from(u + 1).powf(-0.5);
            let (cum, ids) = &mut users_by_location[home];
            let last = cum.last().copied().unwrap_or(0.0);
            cum.push(last + weight);
            ids.push(u);
        }
        Traffic {
            rng,
            mean_rate: monthly_requests / (30.0 * DAY_MS),
            next_candidate_ms: start_ms as f64,
            users_by_location,
        }
    }

    /// The next arrival (thinning against the peak rate 1.8 × mean).
    pub fn next(&mut self) -> Arrival {
        let peak = self.mean_rate * 1.8;
        loop {
            let gap = -(1.0 - self.rng.roll()).ln() / peak;
            self.next_candidate_ms += gap;
            let t = self.next_candidate_ms as u64;
            let rates: Vec<f64> = LOCATIONS
                .iter()
                .map(|(_, off, share)| share * diurnal(t, *off))
                .collect();
            let total: f64 = rates.iter().sum();
            if self.rng.roll() * 1.8 >= total {
                continue;
            }
            let mut pick = self.rng.roll() * total;
            let mut location = rates.len() - 1;
            for (i, r) in rates.iter().enumerate() {
                if pick < *r {
                    location = i;
                    break;
                }
                pick -= r;
            }
            let (cum, ids) = &self.users_by_location[location];
            let Some(&max) = cum.last() else { continue };
            let x = self.rng.roll() * max;
            let i = cum.partition_point(|&c| c <= x).min(ids.len() - 1);
            return Arrival {
                at_ms: t,
                location,
                user: ids[i],
            };
        }
    }
}

/// Which isolates serve which location: `n` isolates shared out by the locations' shares
/// (largest remainder, at least one per location when there are enough); with fewer isolates
/// than locations, location `l` is served by isolate `l mod n`. Returns, per location, its
/// isolates, and per isolate, the location it runs in (for KV's propagation).
pub fn place_isolates(n: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    let l = LOCATIONS.len();
    if n < l {
        let by_loc: Vec<Vec<usize>> = (0..l).map(|i| vec![i % n]).collect();
        let home: Vec<usize> = (0..n).collect();
        return (by_loc, home);
    }
    let spare = (n - l) as f64;
    let mut counts: Vec<usize> = vec![1; l];
    let mut rema: Vec<(f64, usize)> = Vec::new();
    let mut given = l;
    for (i, (_, _, share)) in LOCATIONS.iter().enumerate() {
        let exact = spare * share;
        counts[i] += exact.floor() as usize;
        given += exact.floor() as usize;
        rema.push((exact - exact.floor(), i));
    }
    rema.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, i) in rema.into_iter().take(n - given) {
        counts[i] += 1;
    }
    let mut by_loc = Vec::new();
    let mut home = Vec::new();
    for (loc, c) in counts.into_iter().enumerate() {
        let ids: Vec<usize> = (home.len()..home.len() + c).collect();
        home.extend(std::iter::repeat_n(loc, c));
        by_loc.push(ids);
    }
    (by_loc, home)
}
