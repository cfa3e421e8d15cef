//! bcrypt at the configured cost: hashing new secrets, checking presented ones, and moving
//! hashes made at another cost to the configured one.
//!
//! A failed check takes as long whatever it failed against: an unknown clientId is checked
//! against a decoy, and a mismatch against a hash cheaper than the dearest seen so far is
//! padded with decoy checks up to that cost. So after `M2M_BCRYPT_COST` changes, a wrong secret
//! for a token still hashed at the old cost does not tell an attacker the clientId exists.
//!
//! The work is bounded and shared fairly. Hashing new secrets (token management) and checking
//! presented ones (exchanges, logins) are admitted separately, each to one bcrypt per core
//! running and a short queue, so a flood of one never refuses the other; hashing runs on at
//! most half the cores, so it never holds every one. Within each, one party holds at most half
//! of the admissions: a tenant, for hashing its tokens' secrets; a clientId, for checking the
//! secrets presented with it (known before any read, and a tenant's services each have their
//! own). Beyond them a request is refused at once with `Error::Busy` (429 and `Retry-After`)
//! instead of piling up.
//! Concurrent checks of the same secret against the same hash (replicas starting together with
//! one token's credentials) share one run (see [`Verified::verify`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::sync::{OnceCell, Semaphore};

use super::verified::Verified;
use crate::domain::secret::QuickCheck;
use crate::domain::{
    ClientId, LiveSecret, Secret, SecretHash, SecretKind, SecretState, TenantId, Timestamp,
};
use crate::error::{Error, Result};

/// bcrypt's highest cost.
const MAX_COST: u32 = 31;
/// Waiting bcrypt runs allowed per core, beyond the one running, for each kind of work.
const QUEUE_PER_CORE: usize = 2;

/// Whom a bcrypt run is for: no one party holds more than half of a kind's admissions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Party {
    /// A tenant's tokens: hashing their secrets (created, rotated, rehashed) and checking the
    /// secrets presented for them, so that one tenant's services never hold every slot.
    Tenant(TenantId),
    /// Checking the secrets presented with a clientId that names no token, or the vendor's.
    Client(ClientId),
    /// Hashing the vendor's own secrets.
    Vendor,
}

/// The admissions to one kind of work: runs admitted (running or waiting) and by whom.
struct Budget {
    capacity: usize,
    per_party: usize,
    admitted: Mutex<Admitted>,
    /// Cores this kind may hold at once.
    cores: Semaphore,
}

#[derive(Default)]
struct Admitted {
    total: usize,
    by_party: HashMap<Party, usize>,
}

impl Budget {
    fn new(capacity: usize, cores: usize) -> Self {
        Self {
            capacity,
            per_party: (capacity / 2).max(1),
            admitted: Mutex::default(),
            cores: Semaphore::new(cores),
        }
    }

    /// Admits one run for `party`, or refuses it when the kind or the party is at its limit.
    fn admit(&self, party: &Party) -> Result<Admission<'_>> {
        let mut admitted = self.admitted();
        let held = admitted.by_party.get(party).copied().unwrap_or(0);
        if admitted.total >= self.capacity || held >= self.per_party {
            return Err(Error::Busy);
        }
        admitted.total += 1;
        *admitted.by_party.entry(party.clone()).or_default() += 1;
        Ok(Admission {
            budget: self,
            party: party.clone(),
        })
    }

    fn admitted(&self) -> std::sync::MutexGuard<'_, Admitted> {
        self.admitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Counts one admitted run until dropped.
struct Admission<'a> {
    budget: &'a Budget,
    party: Party,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut admitted = self.budget.admitted();
        admitted.total -= 1;
        if let Entry::Occupied(mut held) = admitted.by_party.entry(self.party.clone()) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

pub(crate) struct Bcrypt {
    cost: u32,
    /// The dearest cost of any hash checked so far, and at least `cost`: every failed check
    /// takes as long as one at this cost.
    dearest: AtomicU32,
    /// A hash of no one's secret at cost 4, made on first need or by [`Bcrypt::prepare`]; its
    /// salt and digest make the decoy at any cost.
    decoy: OnceCell<SecretHash>,
    /// One bcrypt per core at a time, whatever its kind, first come first served.
    workers: Semaphore,
    hashing: Budget,
    checking: Budget,
    /// Checks run so far (shared and refused ones not counted).
    checks: AtomicU64,
    verified: Verified,
}

impl Bcrypt {
    pub(crate) fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let capacity = cores * (1 + QUEUE_PER_CORE);
        Self {
            cost,
            dearest: AtomicU32::new(cost),
            decoy: OnceCell::new(),
            workers: Semaphore::new(cores),
            hashing: Budget::new(capacity, cores.div_ceil(2)),
            checking: Budget::new(capacity, cores),
            checks: AtomicU64::new(0),
            verified: Verified::new(),
        }
    }

    /// bcrypt checks run so far by this process: what its credential checks cost.
    pub(crate) fn checks_run(&self) -> u64 {
        self.checks.load(Ordering::SeqCst)
    }

    /// Makes the decoy now, so the first unknown clientId is not faster.
    pub(crate) async fn prepare(&self) -> Result<()> {
        self.decoy_at(self.cost).await.map(|_| ())
    }

    /// Runs `work` (one bcrypt) for `party` when `budget` admits it and a core is free, or
    /// refuses it at once.
    async fn bounded<T>(
        &self,
        budget: &Budget,
        party: &Party,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let _admission = budget.admit(party)?;
        let _share = budget.cores.acquire().await.map_err(Error::internal)?;
        let _core = self.workers.acquire().await.map_err(Error::internal)?;
        work.await
    }

    /// Hashes a new secret of `party`'s.
    pub(crate) async fn hash(&self, secret: &Secret, party: &Party) -> Result<SecretHash> {
        let work = async { Ok(secret.hash(self.cost).await?) };
        self.bounded(&self.hashing, party, work).await
    }

    /// A hash of no one's secret at `cost`, made without paying that cost: the cost is a field
    /// of a bcrypt hash, so a hash made at the lowest cost, with that field set to `cost`,
    /// takes exactly as long to check as any stored hash of that cost (and matches nothing).
    /// So start-up spends about a millisecond on it, not one full bcrypt.
    async fn decoy_at(&self, cost: u32) -> Result<SecretHash> {
        let cheap = self
            .decoy
            .get_or_try_init(|| async {
                Ok::<_, Error>(Secret::generate(SecretKind::TenantToken).hash(4).await?)
            })
            .await?;
        Ok(SecretHash::from_stored(
            with_cost(cheap.as_stored(), cost),
            None,
        ))
    }

    /// Whether `secret` is the one `stored` was made from, and nothing else. A secret whose quick
    /// check differs is refused without bcrypt; so is one for no record, except that one in
    /// 65,536 is checked against the decoy, as a wrong secret for a real record would be, so the
    /// two look alike from outside.
    ///
    /// A secret verified against the same stored hash within the last few minutes, or being
    /// verified now, is not checked again (see [`super::verified`]). `party` is whom the check
    /// is for.
    pub(crate) async fn matches(
        &self,
        secret: &Secret,
        stored: Option<&SecretHash>,
        party: &Party,
    ) -> Result<bool> {
        match stored {
            Some(hash) if !hash.may_match(secret) => Ok(false),
            None if QuickCheck::random() != secret.quick_check() => Ok(false),
            _ => self.check(secret, stored, party).await,
        }
    }

    /// bcrypt's verdict on `secret` against `stored` (or the decoy), every mismatch taking as
    /// long as a check at the dearest cost seen.
    async fn check(
        &self,
        secret: &Secret,
        stored: Option<&SecretHash>,
        party: &Party,
    ) -> Result<bool> {
        let cost = stored.map_or(self.cost, |hash| hash.cost().unwrap_or(self.cost));
        let dearest = self.dearest.fetch_max(cost, Ordering::SeqCst).max(cost);
        let hash = match stored {
            Some(hash) => hash.clone(),
            None => self.decoy_at(dearest).await?,
        };
        // A check at cost c does 2^c rounds; decoys at c, c+1, ..., d-1 add 2^d - 2^c more.
        let mut padding = Vec::new();
        for cost in hash.cost().unwrap_or(dearest)..dearest.min(MAX_COST) {
            padding.push(self.decoy_at(cost).await?);
        }
        let run = self.bounded(&self.checking, party, async {
            self.checks.fetch_add(1, Ordering::SeqCst);
            let checking = secret.matches_padded(&hash, padding);
            Ok(crate::metrics::timed(crate::metrics::BCRYPT_SECONDS, checking).await?)
        });
        match stored {
            Some(stored) => self.verified.verify(secret, stored, run).await,
            None => run.await.map(|_| false),
        }
    }

    /// Which of `state`'s live secrets `secret` is: the current one, else the previous one
    /// during its grace at `now`; `None` for neither, and for no state (an unknown clientId),
    /// after the same work as a wrong secret. API tokens and vendor credentials alike.
    pub(crate) async fn live_secret(
        &self,
        (secret, party): (&Secret, &Party),
        state: Option<&SecretState>,
        now: Timestamp,
    ) -> Result<Option<LiveSecret>> {
        if self.matches(secret, state.map(|s| &s.hash), party).await? {
            return Ok(state.map(SecretState::current));
        }
        match state.and_then(|s| Some((s, s.previous_live(now)?))) {
            Some((state, previous))
                if self.matches(secret, Some(&previous.hash), party).await? =>
            {
                Ok(state.previous_secret(now))
            }
            _ => Ok(None),
        }
    }

    /// When `secret` is `state`'s current secret (as [`Bcrypt::live_secret`] found), moves its
    /// hash to the configured cost (see [`Bcrypt::upgrade`]): `swap` stores the rehashed state
    /// if the hash is still the one read.
    pub(crate) async fn upgrade_state(
        &self,
        secret: (&Secret, &Party),
        state: &SecretState,
        swap: impl AsyncFnOnce(&SecretState) -> Result<bool>,
    ) {
        let save = async |new: &SecretHash| swap(&state.rehashed(new.clone())).await.map(|_| ());
        self.upgrade(secret, &state.hash, save).await;
    }

    /// When `stored`, which `secret` matched, was made at another cost or without a quick
    /// check: hashes `secret` at the configured cost and has `save` store that in its place.
    /// A failure is logged, not returned: the verification stands, and the next one tries again.
    pub(crate) async fn upgrade(
        &self,
        (secret, party): (&Secret, &Party),
        stored: &SecretHash,
        save: impl AsyncFnOnce(&SecretHash) -> Result<()>,
    ) {
        if stored.cost() == Some(self.cost) && stored.check().is_some() {
            return;
        }
        let upgraded = match self.hash(secret, party).await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::warn!(error = %e, "no rehash at the configured cost"),
        };
        match save(&upgraded).await {
            Ok(()) => self.verified.remember(secret, &upgraded),
            Err(e) => tracing::warn!(error = %e, "the secret's hash stays at its old cost"),
        }
    }
}

/// `hash` (`$2b$04$` and 53 characters of salt and digest) with its cost field set to `cost`.
fn with_cost(hash: &str, cost: u32) -> String {
    let salt_and_digest = hash.rsplit('$').next().unwrap_or_default();
    format!("$2b${cost:02}${salt_and_digest}")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn one_party_holds_at_most_half_of_a_kinds_admissions() {
        let budget = Budget::new(6, 2);
        let (acme, globex) = (Party::Vendor, Party::Client(ClientId::generate()));
        let held: Vec<_> = (0..3).map(|_| budget.admit(&acme).unwrap()).collect();
        assert!(matches!(budget.admit(&acme), Err(Error::Busy)), "its half");
        let others: Vec<_> = (0..3).map(|_| budget.admit(&globex).unwrap()).collect();
        let third = Party::Client(ClientId::generate());
        assert!(matches!(budget.admit(&third), Err(Error::Busy)), "full");
        drop(held);
        assert!(budget.admit(&acme).is_ok(), "released");
        drop(others);
        assert_eq!(budget.admitted().total, 0);
        assert!(budget.admitted().by_party.is_empty());
    }

    #[tokio::test]
    async fn the_decoy_is_checked_at_the_configured_cost_and_matches_nothing() {
        let bcrypt = Bcrypt::new(6);
        bcrypt.prepare().await.unwrap();
        let decoy = bcrypt.decoy_at(6).await.unwrap().as_stored().to_owned();
        assert!(decoy.starts_with("$2b$06$"), "{decoy}");
        assert_eq!(decoy.len(), 60);
        let secret = Secret::generate(SecretKind::TenantToken);
        assert!(
            !bcrypt::verify(secret.expose(), &decoy).unwrap(),
            "a valid hash that matches nothing"
        );
        assert!(!bcrypt.check(&secret, None, &Party::Vendor).await.unwrap());
    }

    /// The median time of `runs` failed checks of a fresh secret against `stored`.
    async fn failing(bcrypt: &Bcrypt, stored: Option<&SecretHash>, runs: usize) -> Duration {
        let mut times = Vec::new();
        for _ in 0..runs {
            let wrong = Secret::generate(SecretKind::TenantToken);
            let started = Instant::now();
            assert!(!bcrypt.check(&wrong, stored, &Party::Vendor).await.unwrap());
            times.push(started.elapsed());
        }
        times.sort();
        times[runs / 2]
    }

    fn about_as_long(a: Duration, b: Duration, what: &str) {
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        assert!((0.5..2.0).contains(&ratio), "{what}: {a:?} against {b:?}");
    }

    /// At a configured cost of 8, an unknown clientId takes as long as a wrong secret for a
    /// token hashed at 5 or at 8 (unpadded, 5 would be 8 times faster); once a hash at 10 has
    /// been checked, both take as long as a check at 10.
    #[tokio::test]
    async fn a_failed_check_takes_as_long_whatever_the_stored_hash_cost() {
        let bcrypt = Bcrypt::new(8);
        let secret = Secret::generate(SecretKind::TenantToken);
        // Without quick checks, as records from before them: every wrong secret reaches bcrypt.
        let at = async |cost| {
            let hash = secret.hash(cost).await.unwrap();
            SecretHash::from_stored(hash.as_stored().to_owned(), None)
        };
        let (at5, at8, at10) = (at(5).await, at(8).await, at(10).await);
        let unknown = failing(&bcrypt, None, 7).await;
        about_as_long(failing(&bcrypt, Some(&at5), 7).await, unknown, "cost 5");
        about_as_long(failing(&bcrypt, Some(&at8), 7).await, unknown, "cost 8");
        let dear = failing(&bcrypt, Some(&at10), 5).await;
        assert!(dear > unknown * 2, "{dear:?} is a check at 10");
        about_as_long(failing(&bcrypt, None, 5).await, dear, "unknown after 10");
        about_as_long(
            failing(&bcrypt, Some(&at5), 5).await,
            dear,
            "cost 5 after 10",
        );
        assert!(
            bcrypt
                .check(&secret, Some(&at5), &Party::Vendor)
                .await
                .unwrap(),
            "right is right"
        );
    }

    #[tokio::test]
    async fn a_hash_at_another_cost_or_without_its_check_is_upgraded_once() {
        let bcrypt = Bcrypt::new(5);
        let secret = Secret::generate(SecretKind::TenantToken);
        let upgraded = async |stored: &SecretHash| {
            let saved = std::sync::Mutex::new(None);
            let save = async |new: &SecretHash| {
                *saved.lock().unwrap() = Some(new.clone());
                Ok(())
            };
            bcrypt
                .upgrade((&secret, &Party::Vendor), stored, save)
                .await;
            saved.into_inner().unwrap()
        };
        let current = secret.hash(5).await.unwrap();
        assert_eq!(upgraded(&current).await, None);
        let unchecked = SecretHash::from_stored(current.as_stored().to_owned(), None);
        for old in [
            secret.hash(4).await.unwrap(),
            secret.hash(6).await.unwrap(),
            unchecked,
        ] {
            let new = upgraded(&old).await.unwrap();
            assert_eq!(new.cost(), Some(5));
            assert!(new.check().is_some());
            assert!(secret.matches(&new).await.unwrap());
            assert_eq!(upgraded(&new).await, None, "current now");
        }
    }
}
