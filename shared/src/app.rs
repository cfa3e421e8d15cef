//! The application state every handler shares: settings and the ports, built once per cold start.

use std::sync::Arc;

use crate::adapters::{DynamoStore, EmbeddedStore, KmsSigner, LocalKeySigner, SystemClock};
use crate::config::{Backend, Settings};
use crate::domain::{Secret, SecretHash, SecretKind, Timestamp};
use crate::error::{Error, Result};
use crate::ports::{Clock, Signer, Store};

pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub signer: Arc<dyn Signer>,
    pub clock: Arc<dyn Clock>,
    /// A hash of no one's secret, checked when a clientId is unknown so that an unknown
    /// clientId costs the same bcrypt work as a wrong secret.
    decoy_hash: SecretHash,
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
        Self::with_parts(settings, store, signer, Arc::new(SystemClock)).await
    }

    pub async fn with_parts(
        settings: Settings,
        store: Arc<dyn Store>,
        signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let decoy_hash = Secret::generate(SecretKind::TenantToken)
            .hash(settings.bcrypt_cost)
            .await?;
        Ok(Self {
            settings,
            store,
            signer,
            clock,
            decoy_hash,
        })
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
        let matched = secret.matches(stored.unwrap_or(&self.decoy_hash)).await?;
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
