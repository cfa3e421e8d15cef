//! Time as the service sees it: unix milliseconds, from a [`crate::ports::Clock`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Stored as the number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Whole unix seconds, as JWT claims and DynamoDB TTL attributes want them.
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    /// `2024-01-01T00:00:00.000Z`, for management responses.
    pub fn iso8601(self) -> String {
        let at = self.datetime();
        let whole = at.replace_millisecond(0).unwrap_or(at);
        let text = whole.format(&Rfc3339).unwrap_or_default();
        format!("{}.{:03}Z", text.trim_end_matches('Z'), at.millisecond())
    }

    /// `Mon, 01 Jan 2024 00:00:00 GMT`, for exchange responses.
    pub fn http_date(self) -> String {
        let secs = u64::try_from(self.seconds()).unwrap_or(0);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_contract() {
        let t = Timestamp::from_millis(1_704_067_200_123);
        assert_eq!(t.iso8601(), "2024-01-01T00:00:00.123Z");
        assert_eq!(t.http_date(), "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(t.seconds(), 1_704_067_200);
        assert_eq!(t.plus_seconds(60).seconds(), 1_704_067_260);
    }
}
