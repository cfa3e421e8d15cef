//! The local default's signer: an RSA-2048 key kept in the data folder, parsed once and used
//! through aws-lc-rs (about 0.26 ms a signature).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Rotation;
use crate::domain::PublicKey;
use crate::domain::jwt::pem_encode;
use crate::error::{Error, Result};
use crate::ports::Signer;

const PEM_LABEL: &str = "PRIVATE KEY";

pub struct LocalKeySigner {
    key_pair: KeyPair,
    public_key: PublicKey,
}

impl LocalKeySigner {
    /// Loads the PKCS#8 PEM key at `path`, or makes one and writes it there (mode 0600,
    /// written to a temporary file and renamed, so a crash never leaves half a key).
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let key_pair = match std::fs::read_to_string(path) {
            Ok(pem) => {
                let der = pem_body(&pem).ok_or_else(|| {
                    Error::internal(format!("{} is not a PEM private key", path.display()))
                })?;
                KeyPair::from_pkcs8(&der).map_err(|e| {
                    Error::internal(format!("{} is not an RSA key: {e}", path.display()))
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key_pair, der) = generate_pkcs8()?;
                write_private(path, &pem_encode(PEM_LABEL, &der))?;
                key_pair
            }
            Err(e) => {
                return Err(Error::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(Self {
            public_key: public_key_of(&key_pair)?,
            key_pair,
        })
    }
}

/// A new RSA-2048 key pair and its PKCS#8 DER.
pub(crate) fn generate_pkcs8() -> Result<(KeyPair, Vec<u8>)> {
    let key_pair = KeyPair::generate(KeySize::Rsa2048).map_err(Error::internal)?;
    let der =
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key_pair).map_err(Error::internal)?;
    Ok((key_pair, der.as_ref().to_vec()))
}

pub(crate) fn public_key_of(key_pair: &KeyPair) -> Result<PublicKey> {
    let spki = key_pair.public_key().as_der().map_err(Error::internal)?;
    Ok(PublicKey::from_spki_der(spki.as_ref())?)
}

/// RSASSA-PKCS1-v1_5 with SHA-256, in memory.
pub(crate) fn sign_with(key_pair: &KeyPair, message: &[u8]) -> Result<Vec<u8>> {
    let mut signature = vec![0; key_pair.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    key_pair
        .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
        .map_err(Error::internal)?;
    Ok(signature)
}

#[async_trait]
impl Signer for LocalKeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        sign_with(&self.key_pair, message)
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with(&format!("-----BEGIN {PEM_LABEL}")))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body.trim()).ok()
}

/// Writes `contents` readable by the owner only, atomically.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_survives_a_restart_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let first = LocalKeySigner::load_or_create(&path).unwrap();
        let again = LocalKeySigner::load_or_create(&path).unwrap();
        assert_eq!(first.public_key().kid(), again.public_key().kid());
        let signature = again.sign(b"message").await.unwrap();
        let spki = first.key_pair.public_key().as_der().unwrap();
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            aws_lc_rs::rsa::PublicKey::from_der(spki.as_ref())
                .unwrap()
                .as_ref()
                .to_vec(),
        );
        assert!(key.verify(b"message", &signature).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file must be private");
        }
    }
}
