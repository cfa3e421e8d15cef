//! A signing-key rotation: the new key signs every JWT from now on, and the key it replaces
//! stays published until it is retired, so that JWTs it signed verify until they expire and
//! refresh tokens made under it still refresh. KMS: `M2M_PREVIOUS_KMS_KEY_ID` (the template's
//! `PreviousSigningKeyArn`); the local key: `signing-key.previous.pem` beside `signing-key.pem`
//! (`m2m-admin rotate-key`, then `m2m-admin retire-key`).

use async_trait::async_trait;

use crate::domain::PublicKey;
use crate::error::Result;
use crate::ports::Signer;

pub struct Rotation {
    current: Box<dyn Signer>,
    retired: Box<dyn Signer>,
    /// The current signer's other keys, then every key of the retired one.
    also_published: Vec<PublicKey>,
}

impl Rotation {
    pub fn new(current: Box<dyn Signer>, retired: Box<dyn Signer>) -> Self {
        let mut also_published = current.also_published().to_vec();
        for key in retired.published() {
            if key.kid() != current.public_key().kid()
                && !also_published.iter().any(|k| k.kid() == key.kid())
            {
                also_published.push(key.clone());
            }
        }
        Self {
            current,
            retired,
            also_published,
        }
    }
}

#[async_trait]
impl Signer for Rotation {
    fn public_key(&self) -> &PublicKey {
        self.current.public_key()
    }

    fn also_published(&self) -> &[PublicKey] {
        &self.also_published
    }

    fn retired(&self) -> Option<&dyn Signer> {
        Some(self.retired.as_ref())
    }

    async fn check(&self) -> Result<()> {
        self.current.check().await
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.current.sign(message).await
    }
}
