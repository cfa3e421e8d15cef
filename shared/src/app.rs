//! The composition root: settings and the ports, built once per cold start. Its fields are
//! private; the operations (in `operations`) are its only way in, and each reaches only the
//! ports it uses.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::adapters::{DynamoStore, EmbeddedStore, KmsSigner, LocalKeySigner, SystemClock};
use crate::config::{Backend, Settings};
use crate::domain::{PublicKey, Secret, SecretHash, SecretKind, Timestamp};
use crate::error::{Error, Result};
use crate::ports::{Clock, DirectoryStore, RefreshStore, Signer, Store, TokenStore, VendorStore};

pub struct App {
    pub(crate) settings: Settings,
    pub(crate) vendors: Arc<dyn VendorStore>,
    pub(crate) tokens: Arc<dyn TokenStore>,
    pub(crate) refresh: Arc<dyn RefreshStore>,
    pub(crate) directory: Arc<dyn DirectoryStore>,
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) clock: Arc<dyn Clock>,
    /// A hash of no one's secret, checked when a clientId is unknown so that an unknown
    /// clientId costs the same bcrypt work as a wrong secret. Made on first need, or up front
    /// by [`App::prepare_credential_checks`] where credentials are checked.
    decoy_hash: OnceCell<SecretHash>,
}

impl App {
    /// Builds the adapters the settings name.
    pub async fn build(settings: Settings) -> Result<Self> {
        let (store, signer): (Arc<dyn Store>, Arc<dyn Signer>) = match &settings.backend {
            Backend::Embedded { data_dir } => {
                create_private_dir(data_dir)?;
                (
                    Arc::new(EmbeddedStore::open(&data_dir.join("tokens.redb"))?),
                    Arc::new(LocalKeySigner::load_or_create(
                        &data_dir.join("signing-key.pem"),
                    )?),
                )
            }
            Backend::Aws { table, kms_key_id } => {
                let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                (
                    Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table)),
                    Arc::new(KmsSigner::connect(aws_sdk_kms::Client::new(&aws), kms_key_id).await?),
                )
            }
        };
        Ok(Self::with_parts(
            settings,
            store,
            signer,
            Arc::new(SystemClock),
        ))
    }

    /// Composes the app from adapters already built (the tests build their own).
    pub fn with_parts(
        settings: Settings,
        store: Arc<dyn Store>,
        signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            settings,
            vendors: Arc::clone(&store) as Arc<dyn VendorStore>,
            tokens: Arc::clone(&store) as Arc<dyn TokenStore>,
            refresh: Arc::clone(&store) as Arc<dyn RefreshStore>,
            directory: store as Arc<dyn DirectoryStore>,
            signer,
            clock,
            decoy_hash: OnceCell::new(),
        }
    }

    /// Makes the decoy hash now (one bcrypt hash at the configured cost), so that the first
    /// unknown clientId is not slower than a wrong secret. Only processes that check
    /// credentials need it; the others skip this cold-start cost.
    pub async fn prepare_credential_checks(&self) -> Result<()> {
        self.decoy().await.map(|_| ())
    }

    async fn decoy(&self) -> Result<&SecretHash> {
        self.decoy_hash
            .get_or_try_init(|| async {
                let nobody = Secret::generate(SecretKind::TenantToken);
                nobody.hash(self.settings.bcrypt_cost).await
            })
            .await
            .map_err(Error::from)
    }

    pub fn public_key(&self) -> &PublicKey {
        self.signer.public_key()
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The configured public base URL, if any.
    pub fn public_url(&self) -> Option<&str> {
        self.settings.public_url.as_deref()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// bcrypt-checks `secret` against `stored`, or against the decoy when there is no record,
    /// and answers only whether it matched.
    pub(crate) async fn secret_matches(
        &self,
        secret: &Secret,
        stored: Option<&SecretHash>,
    ) -> Result<bool> {
        let matched = match stored {
            Some(hash) => secret.matches(hash).await?,
            None => secret.matches(self.decoy().await?).await?,
        };
        Ok(matched && stored.is_some())
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))
}
