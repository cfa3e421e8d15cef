//! Credentials verified lately: a client that exchanges the same clientId and secret again
//! within a few minutes skips bcrypt. What is kept is an HMAC, under a key made at random when
//! the process starts and never stored, of the secret and the bcrypt hash it matched; never the
//! secret. The hash comes from the record read on every request, so deleting or expiring the
//! token, or giving it another secret, takes effect at once: the record is gone, refused, or
//! holds another hash, and nothing kept matches it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

use crate::domain::{Secret, SecretHash};

/// How long a verification is remembered.
const REMEMBERED_FOR: Duration = Duration::from_secs(300);
/// At most this many are remembered; beyond it, the expired go, or else all.
const CAPACITY: usize = 100_000;

pub(crate) struct Verified {
    key: hmac::Key,
    until: Mutex<Entries>,
}

/// When each remembered verification, keyed by its HMAC-SHA256 tag, is forgotten.
type Entries = HashMap<[u8; 32], Instant>;

impl Verified {
    pub(crate) fn new() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // As elsewhere: nothing safe can be done without the OS RNG.
        #[allow(clippy::expect_used)]
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the OS RNG works");
        Self {
            key,
            until: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, secret: &Secret, hash: &SecretHash) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(hash.as_stored().as_bytes());
        context.update(&[0]);
        context.update(secret.expose().as_bytes());
        let mut tag = [0; 32];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }

    /// Whether `secret` was found to match `hash` within the last few minutes.
    pub(crate) fn recalls(&self, secret: &Secret, hash: &SecretHash) -> bool {
        let tag = self.tag(secret, hash);
        let Ok(entries) = self.entries() else {
            return false;
        };
        entries
            .get(&tag)
            .is_some_and(|until| *until > Instant::now())
    }

    /// Remembers that `secret` matches `hash`.
    pub(crate) fn remember(&self, secret: &Secret, hash: &SecretHash) {
        let tag = self.tag(secret, hash);
        let Ok(mut entries) = self.entries() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            entries.retain(|_, until| *until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(tag, now + REMEMBERED_FOR);
    }

    fn entries(&self) -> Result<std::sync::MutexGuard<'_, Entries>, ()> {
        self.until.lock().map_err(|_| ())
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
}
