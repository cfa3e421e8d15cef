//! Revoked JWTs: once a token is deleted, or its secret rotated out at once, the JWTs already
//! issued from it are void before they expire. Each revocation names the token (`sub`) and the
//! second before which its JWTs are void; it is kept only while such a JWT could still be
//! unexpired, and written only for a token that issued one recently enough for it still to be:
//! so the published list is as long as the recent use of the tokens retired, not their churn.

use serde::{Deserialize, Serialize};

use super::ids::ClientId;
use super::time::Timestamp;

/// Verifiers allow this much clock skew on `exp`; a revocation outlives it.
const SKEW_SECONDS: i64 = 60;

/// A token's last use is recorded on its first JWT of each minute of the clock (see
/// [`crate::ports::RateStore::reserve_uses`]): every JWT of it was issued less than this long
/// after its recorded last use.
const LAST_USE_RESOLUTION_SECONDS: i64 = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub sub: ClientId,
    /// JWTs issued in an earlier second are void.
    pub before: Timestamp,
    /// When it takes effect: at once for a deletion (`before`), at the end of its grace for a
    /// secret rotated out with one. A token has at most one of each kind.
    pub from: Timestamp,
    /// When no JWT it voids can still be unexpired: it may be forgotten.
    pub until: Timestamp,
}

impl Revocation {
    /// `sub`'s JWTs issued before `now` are void; kept while one could live (`access_ttl`).
    pub fn at(sub: ClientId, now: Timestamp, access_ttl_seconds: i64) -> Self {
        Self {
            sub,
            before: now,
            from: now,
            until: now.plus_seconds(access_ttl_seconds + SKEW_SECONDS),
        }
    }

    /// `sub`'s JWTs issued before `now` become void at `from` (a rotated-out secret's, at the
    /// end of its grace); `None` when none of them can still be unexpired by then.
    pub fn later(
        sub: ClientId,
        now: Timestamp,
        from: Timestamp,
        access_ttl_seconds: i64,
    ) -> Option<Self> {
        let revocation = Self {
            from,
            ..Self::at(sub, now, access_ttl_seconds)
        };
        (revocation.from < revocation.until).then_some(revocation)
    }

    /// Whether it takes effect later than it voids (kept apart from a token's revocation that
    /// already holds).
    pub fn is_later(&self) -> bool {
        self.from > self.before
    }

    /// Whether it holds at `now`: in effect and still needed.
    pub fn holds(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }

    /// The revocations that hold at `now`, one per token: of a token's two (at once and later),
    /// the one voiding more.
    pub fn holding(revocations: impl IntoIterator<Item = Self>, now: Timestamp) -> Vec<Self> {
        let mut by_sub: std::collections::HashMap<ClientId, Self> = Default::default();
        for revocation in revocations.into_iter().filter(|r| r.holds(now)) {
            match by_sub.get(&revocation.sub) {
                Some(kept) if kept.before >= revocation.before => {}
                _ => {
                    by_sub.insert(revocation.sub, revocation);
                }
            }
        }
        by_sub.into_values().collect()
    }

    /// What retiring a token last used at `last_used_at` (its record's) must void at `now`:
    /// nothing if it never issued a JWT, or if its last JWT (issued at most a minute after its
    /// recorded last use) can no longer be unexpired; so a token created and deleted unused
    /// costs the published list nothing.
    pub fn of_retired(
        sub: ClientId,
        last_used_at: Option<Timestamp>,
        now: Timestamp,
        access_ttl_seconds: i64,
    ) -> Option<Self> {
        let last_jwt = last_used_at?.plus_seconds(LAST_USE_RESOLUTION_SECONDS);
        let outlived = Self::at(sub, last_jwt, access_ttl_seconds).until <= now;
        (!outlived).then(|| Self::at(sub, now, access_ttl_seconds))
    }

    /// Whether a JWT issued at `iat` (seconds) is void: one issued up to and including the
    /// revocation's second, so none issued in the same second as a deletion survives it. A
    /// rotated secret's successor issues nothing in its rotation's second (see
    /// `Credentials::issue_time`), so it is never caught.
    pub fn voids(&self, iat: i64) -> bool {
        iat < self.first_standing_second()
    }

    /// The first second whose JWTs stand: what the published list calls `before`.
    pub fn first_standing_second(&self) -> i64 {
        self.before.seconds() + 1
    }
}

/// The published document's payload, signed as a JWT with the signing key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevocationList {
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub revoked: Vec<RevokedSub>,
}

/// One entry: JWTs of `sub` with `iat` below `before` are void.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevokedSub {
    pub sub: String,
    pub before: i64,
}

/// How long a published list may be used before it must be fetched again.
pub const LIST_LIFETIME_SECONDS: i64 = 300;

/// How long a process serves the list it published before it reads the revocations again
/// (and caches may keep it): so anonymous requests cost at most one read of them per process
/// in this time, whatever their number.
pub const LIST_REFRESH_SECONDS: i64 = 5;

/// A list whose revocations are unchanged is served as it was signed until it is this old, so
/// that its signature is renewed long before its `exp`, not on every read.
pub const LIST_RESIGN_SECONDS: i64 = LIST_LIFETIME_SECONDS / 2;

impl RevocationList {
    pub fn new(iss: &str, now: Timestamp, revocations: &[Revocation]) -> Self {
        Self {
            iss: iss.to_owned(),
            iat: now.seconds(),
            exp: now.plus_seconds(LIST_LIFETIME_SECONDS).seconds(),
            revoked: revocations
                .iter()
                .map(|r| RevokedSub {
                    sub: r.sub.to_string(),
                    before: r.first_standing_second(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_voids_its_second_and_earlier_and_lives_as_long_as_a_jwt() {
        let at = Timestamp::from_millis(1_800_000_000_500);
        let revocation = Revocation::at(ClientId::generate(), at, 3600);
        assert!(revocation.voids(1_799_999_999));
        assert!(revocation.voids(1_800_000_000), "its own second is void");
        assert!(!revocation.voids(1_800_000_001));
        let list = RevocationList::new("https://auth.test", at, std::slice::from_ref(&revocation));
        assert_eq!(
            list.revoked[0].before, 1_800_000_001,
            "iat below it is void"
        );
        assert_eq!(revocation.until.seconds(), 1_800_000_000 + 3600 + 60);
    }

    #[test]
    fn a_later_revocation_holds_from_its_moment_and_the_stronger_of_two_wins() {
        let (sub, ttl) = (ClientId::generate(), 600);
        let at = Timestamp::from_millis(1_800_000_000_000);
        let grace_end = at.plus_seconds(300);
        let later = Revocation::later(sub, at, grace_end, ttl).unwrap();
        assert!(later.is_later());
        assert!(
            Revocation::holding([later.clone()], at).is_empty(),
            "not yet"
        );
        let held = Revocation::holding([later.clone()], grace_end);
        assert_eq!(held, std::slice::from_ref(&later));
        assert!(
            Revocation::later(sub, at, at.plus_seconds(ttl + 60), ttl).is_none(),
            "a grace outliving every JWT issued before it needs none"
        );
        let earlier = Revocation::at(sub, at.plus_seconds(-100), ttl);
        let held = Revocation::holding([later.clone(), earlier.clone()], at);
        assert_eq!(held, std::slice::from_ref(&earlier));
        assert_eq!(
            Revocation::holding([earlier, later.clone()], grace_end),
            [later]
        );
    }

    #[test]
    fn only_a_token_whose_last_jwt_could_still_live_needs_a_revocation() {
        let (sub, ttl) = (ClientId::generate(), 600);
        let now = Timestamp::from_millis(1_800_000_000_000);
        let used = |seconds_ago: i64| Some(now.plus_seconds(-seconds_ago));
        assert_eq!(
            Revocation::of_retired(sub, None, now, ttl),
            None,
            "never used"
        );
        let recent = Revocation::of_retired(sub, used(600), now, ttl);
        assert_eq!(recent, Some(Revocation::at(sub, now, ttl)));
        // Its last JWT came at most a minute after its last use, and verifiers allow a minute
        // of skew on `exp`.
        assert!(Revocation::of_retired(sub, used(ttl + 119), now, ttl).is_some());
        assert_eq!(Revocation::of_retired(sub, used(ttl + 120), now, ttl), None);
    }
}
