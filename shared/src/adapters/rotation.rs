//! A signing-key rotation: the new key signs every JWT from now on, and the key it replaces
//! stays published until it is retired, so that JWTs it signed verify until they expire and
//! refresh tokens made under it still refresh. KMS: `M2M_PREVIOUS_KMS_KEY_ID` (the template's
//! `PreviousSigningKeyArn`); the local key: `signing-key.previous.pem` beside `signing-key.pem`
//! (`m2m-admin rotate-key`, then `m2m-admin retire-key`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::LocalKeySigner;
use crate::domain::PublicKey;
use crate::error::{Error, Result};
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

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.current.sign(message).await
    }
}

/// The local key files in a data folder: the signing key, and the one it replaced.
pub struct LocalKeys {
    pub current: PathBuf,
    pub previous: PathBuf,
}

impl LocalKeys {
    pub fn in_folder(data_dir: &Path) -> Self {
        Self {
            current: data_dir.join("signing-key.pem"),
            previous: data_dir.join("signing-key.previous.pem"),
        }
    }

    /// The signer: the current key (made on first start), rotating from the previous one
    /// while it is there.
    pub fn signer(&self) -> Result<Box<dyn Signer>> {
        let current = Box::new(LocalKeySigner::load_or_create(&self.current)?);
        if !self.previous.exists() {
            return Ok(current);
        }
        let previous = Box::new(LocalKeySigner::load_or_create(&self.previous)?);
        Ok(Box::new(Rotation::new(current, previous)))
    }

    /// Starts a rotation: the current key becomes the previous one (ending any rotation under
    /// way: its previous key is dropped) and a new key is made. A crash part way leaves either
    /// the old state or the new one, or no current key, which the next start makes.
    pub fn rotate(&self) -> Result<()> {
        let fresh = self.current.with_extension("pem.new");
        let _ = std::fs::remove_file(&fresh);
        LocalKeySigner::load_or_create(&fresh)?;
        if self.current.exists() {
            std::fs::rename(&self.current, &self.previous).map_err(|e| {
                Error::internal(format!("cannot keep {}: {e}", self.current.display()))
            })?;
        }
        std::fs::rename(&fresh, &self.current)
            .map_err(|e| Error::internal(format!("cannot place the new key: {e}")))
    }

    /// Ends a rotation: the previous key is deleted; its JWTs no longer verify. `false` when
    /// no rotation was under way.
    pub fn retire(&self) -> Result<bool> {
        match std::fs::remove_file(&self.previous) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::internal(format!(
                "cannot delete {}: {e}",
                self.previous.display()
            ))),
        }
    }
}
