//! Percentages on the wire as plain numbers (`25.0`, `0.25`), not the router's internal
//! hundredths: an operator reads and writes percentages. Used with `#[serde(with = "pct")]`.

use crate::core::cohort::Percent;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(p: &Percent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(p.percent())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Percent, D::Error> {
    let v = f64::deserialize(d)?;
    Percent::from_percent(v).ok_or_else(|| {
        serde::de::Error::custom(format!("percentage must be a number in [0, 100], got {v}"))
    })
}
