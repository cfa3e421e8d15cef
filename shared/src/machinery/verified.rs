//! Credentials verified lately: a client that exchanges the same clientId and secret again
//! within a few minutes skips bcrypt. What is kept is a tag (see [`super::remembered`]) of the
//! secret and the bcrypt hash it matched; never the secret. The hash comes from the record read
//! on every request, so deleting or expiring the token, or giving it another secret, takes
//! effect at once: the record is gone, refused, or holds another hash, and nothing kept matches.
//!
//! Credentials being verified are shared too: requests presenting the same secret for the same
//! hash while one check of them runs (replicas of a service starting together) wait for its
//! verdict instead of each running bcrypt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

use super::remembered::{Remembered, Tag};
use crate::domain::{Secret, SecretHash};
use crate::error::Result;

pub(crate) struct Verified {
    remembered: Remembered<()>,
    /// The checks running now, each with the verdict all its requests wait for.
    running: Mutex<HashMap<Tag, Arc<OnceCell<bool>>>>,
}

impl Verified {
    pub(crate) fn new() -> Self {
        Self {
            // A tag and an instant each: a few MB at most.
            remembered: Remembered::new(100_000),
            running: Mutex::default(),
        }
    }

    fn tag(&self, secret: &Secret, hash: &SecretHash) -> Tag {
        let parts = [hash.as_stored().as_bytes(), secret.expose().as_bytes()];
        self.remembered.tag(&parts)
    }

    /// Whether `secret` was found to match `hash` within the last few minutes.
    #[cfg(test)]
    pub(crate) fn recalls(&self, secret: &Secret, hash: &SecretHash) -> bool {
        self.remembered.recall(&self.tag(secret, hash)).is_some()
    }

    /// Remembers that `secret` matches `hash`.
    pub(crate) fn remember(&self, secret: &Secret, hash: &SecretHash) {
        self.remembered.remember(self.tag(secret, hash), ());
    }

    /// Whether `secret` matches `hash`: true if recalled; else the verdict of the check of
    /// them running now, or of `check` run by this request (single flight). A check that
    /// fails (refused as busy, cut short) leaves the next waiting request to run its own.
    pub(crate) async fn verify(
        &self,
        secret: &Secret,
        hash: &SecretHash,
        check: impl Future<Output = Result<bool>>,
    ) -> Result<bool> {
        let tag = self.tag(secret, hash);
        let flight = {
            let mut running = self.running();
            // Under the lock: a check ending remembers its match before it leaves `running`.
            if self.remembered.recall(&tag).is_some() {
                return Ok(true);
            }
            Flight {
                verified: self,
                tag,
                cell: Arc::clone(running.entry(tag).or_default()),
            }
        };
        let verdict = flight.cell.get_or_try_init(|| check).await.copied();
        if verdict.as_ref().is_ok_and(|matched| *matched) {
            self.remembered.remember(tag, ());
        }
        verdict
    }

    fn running(&self) -> MutexGuard<'_, HashMap<Tag, Arc<OnceCell<bool>>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request's part in a check: when the last request of a check leaves (its verdict given, or
/// all of them dropped, as when their clients went away), the check leaves `running`, so that
/// nothing is kept for credentials nobody waits on.
struct Flight<'v> {
    verified: &'v Verified,
    tag: Tag,
    cell: Arc<OnceCell<bool>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut running = self.verified.running();
        let ours = running
            .get(&self.tag)
            .is_some_and(|r| Arc::ptr_eq(r, &self.cell));
        // The map's reference and this one: no other request waits on it.
        if ours && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2) {
            running.remove(&self.tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SecretKind;

    #[test]
    fn only_the_secret_and_hash_remembered_together_are_recalled() {
        let verified = Verified::new();
        let secret = Secret::generate(SecretKind::TenantToken);
        let other = Secret::generate(SecretKind::TenantToken);
        let hash = SecretHash::from_stored("$2b$04$first".into(), None);
        let rehashed = SecretHash::from_stored("$2b$04$second".into(), None);
        assert!(!verified.recalls(&secret, &hash), "nothing yet");
        verified.remember(&secret, &hash);
        assert!(verified.recalls(&secret, &hash));
        assert!(!verified.recalls(&other, &hash), "another secret");
        assert!(
            !verified.recalls(&secret, &rehashed),
            "the token's secret changed"
        );
        assert!(
            !Verified::new().recalls(&secret, &hash),
            "another process's key"
        );
    }

    #[tokio::test]
    async fn concurrent_checks_of_the_same_credentials_run_once() {
        let verified = Verified::new();
        let secret = Secret::generate(SecretKind::TenantToken);
        let hash = SecretHash::from_stored("$2b$04$first".into(), None);
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let check = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(true)
        };
        let all = (0..16).map(|_| verified.verify(&secret, &hash, check()));
        for verdict in futures::future::join_all(all).await {
            assert!(verdict.unwrap());
        }
        assert_eq!(runs.into_inner(), 1);
        assert!(verified.recalls(&secret, &hash));
        assert!(verified.running().is_empty());
    }

    #[tokio::test]
    async fn a_check_nobody_waits_on_any_more_is_not_kept() {
        let verified = Verified::new();
        let secret = Secret::generate(SecretKind::TenantToken);
        let hash = SecretHash::from_stored("$2b$04$first".into(), None);
        let forever = std::future::pending::<Result<bool>>();
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            verified.verify(&secret, &hash, forever),
        );
        assert!(cut.await.is_err(), "the client went away");
        assert!(verified.running().is_empty());
    }
}
