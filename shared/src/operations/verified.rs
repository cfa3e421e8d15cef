//! Credentials verified lately: a client that exchanges the same clientId and secret again
//! within a few minutes skips bcrypt. What is kept is a tag (see [`super::remembered`]) of the
//! secret and the bcrypt hash it matched; never the secret. The hash comes from the record read
//! on every request, so deleting or expiring the token, or giving it another secret, takes
//! effect at once: the record is gone, refused, or holds another hash, and nothing kept matches.

use super::remembered::{Remembered, Tag};
use crate::domain::{Secret, SecretHash};

pub(crate) struct Verified(Remembered<()>);

impl Verified {
    pub(crate) fn new() -> Self {
        // A tag and an instant each: a few MB at most.
        Self(Remembered::new(100_000))
    }

    fn tag(&self, secret: &Secret, hash: &SecretHash) -> Tag {
        let parts = [hash.as_stored().as_bytes(), secret.expose().as_bytes()];
        self.0.tag(&parts)
    }

    /// Whether `secret` was found to match `hash` within the last few minutes.
    pub(crate) fn recalls(&self, secret: &Secret, hash: &SecretHash) -> bool {
        self.0.recall(&self.tag(secret, hash)).is_some()
    }

    /// Remembers that `secret` matches `hash`.
    pub(crate) fn remember(&self, secret: &Secret, hash: &SecretHash) {
        self.0.remember(self.tag(secret, hash), ());
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
