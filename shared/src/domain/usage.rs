//! What each API token was used for, per minute and per day: JWTs issued, and refusals by
//! reason. A process counts each minute in memory (see [`crate::machinery::usage`]); each
//! minute, once over, becomes an `apiToken.used` audit event and is added to its day's counts,
//! which are kept [`DAYS_KEPT`] days (so at most that many records per token).

use serde::{Deserialize, Serialize};

use super::{ClientId, TenantId, Timestamp};

/// How long a day's counts are kept.
pub const DAYS_KEPT: i64 = 90;
/// The days the usage endpoint answers, today included.
pub const DAYS_SHOWN: i64 = 30;
const DAY_MILLIS: i64 = 86_400_000;

/// A day, as days since 1970-01-01 (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(pub i64);

impl Day {
    pub fn of(at: Timestamp) -> Self {
        Self(at.millis().div_euclid(DAY_MILLIS))
    }

    pub fn start(self) -> Timestamp {
        Timestamp::from_millis(self.0 * DAY_MILLIS)
    }

    /// `YYYY-MM-DD`.
    pub fn date(self) -> String {
        self.start().iso8601()[..10].to_owned()
    }

    /// Until when its counts are kept.
    pub fn kept_until(self) -> Timestamp {
        Self(self.0 + DAYS_KEPT).start()
    }
}

/// Refusals by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Refused {
    /// The wrong secret, or one no longer live.
    pub secret: u64,
    /// From outside the token's allowed addresses.
    pub allow_list: u64,
    /// Beyond the token's JWTs per minute.
    pub rate_limit: u64,
    /// Its kind of token switched off by the vendor.
    pub disabled: u64,
}

impl Refused {
    pub fn total(&self) -> u64 {
        self.secret + self.allow_list + self.rate_limit + self.disabled
    }

    fn add(&mut self, other: &Self) {
        self.secret = self.secret.saturating_add(other.secret);
        self.allow_list = self.allow_list.saturating_add(other.allow_list);
        self.rate_limit = self.rate_limit.saturating_add(other.rate_limit);
        self.disabled = self.disabled.saturating_add(other.disabled);
    }
}

/// Counts of a span of time (a minute, a day).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counts {
    pub issued: u64,
    pub refused: Refused,
}

impl Counts {
    pub fn add(&mut self, other: &Self) {
        self.issued = self.issued.saturating_add(other.issued);
        self.refused.add(&other.refused);
    }
}

/// One token's counts of one minute, once the minute is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteUsage {
    pub client_id: ClientId,
    pub tenant_id: TenantId,
    /// The minute's start.
    pub minute: Timestamp,
    pub counts: Counts,
}

/// One token's counts of one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayUsage {
    pub day: Day,
    pub counts: Counts,
}

/// The last [`DAYS_SHOWN`] days up to `today`, oldest first, each with its counts (none for a
/// day without any).
pub fn last_days(today: Day, kept: &[DayUsage]) -> Vec<DayUsage> {
    (today.0 - DAYS_SHOWN + 1..=today.0)
        .map(|n| DayUsage {
            day: Day(n),
            counts: kept
                .iter()
                .find(|d| d.day.0 == n)
                .map(|d| d.counts)
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates_kept_ninety_days() {
        let at = Timestamp::from_millis(1_796_601_600_000 + 3_600_000); // 2026-12-07 01:00 UTC
        let day = Day::of(at);
        assert_eq!(day.date(), "2026-12-07");
        assert_eq!(Day(day.0 - 1).date(), "2026-12-06");
        assert_eq!(
            day.kept_until().millis() - day.start().millis(),
            90 * DAY_MILLIS
        );
    }

    #[test]
    fn the_last_days_are_thirty_with_gaps_as_zero() {
        let today = Day(20_000);
        let kept = [DayUsage {
            day: Day(19_999),
            counts: Counts {
                issued: 3,
                refused: Refused {
                    secret: 1,
                    ..Refused::default()
                },
            },
        }];
        let days = last_days(today, &kept);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].day, Day(19_971));
        assert_eq!(days[28].counts.issued, 3);
        assert_eq!(days[29].counts, Counts::default());
    }
}
