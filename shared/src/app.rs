//! The composition root: settings and the ports, built once per cold start. Its fields are
//! private; the operation groups it hands out (in `operations`) are the only way in, and each
//! holds only the ports its operations use.

use std::sync::Arc;

use crate::adapters::oidc::Issuers;
use crate::adapters::{DynamoStore, SystemClock};
#[cfg(feature = "local")]
use crate::adapters::{EmbeddedStore, LocalKeys};
use crate::config::{Backend, Settings};
use crate::domain::PublicKey;
use crate::domain::audit::Attribution;
use crate::domain::branding::Branding;
use crate::error::{Error, Result};
use crate::machinery::{Kept, Refusals, Usage};
use crate::operations::{
    ApiTokens, Auditor, Audits, BRANDING_KEPT, Backup, Bcrypt, Credentials, Directory, Health,
    KeptReadiness, Portal, PublishedList, ReadPlans, RefreshKeys, Retirement, TokenRateLimit,
    Vendors,
};
use crate::ports::{
    AuditStore, Clock, DirectoryStore, ExportStore, HandoffStore, RateStore, RefreshStore,
    RevocationStore, Signer, Store, TokenStore, VendorStore,
};

pub struct App {
    settings: Settings,
    vendors: Arc<dyn VendorStore>,
    tokens: Arc<dyn TokenStore>,
    refresh: Arc<dyn RefreshStore>,
    rates: Arc<dyn RateStore>,
    handoffs: Arc<dyn HandoffStore>,
    revocations: Arc<dyn RevocationStore>,
    directory: Arc<dyn DirectoryStore>,
    audits: Arc<dyn AuditStore>,
    exports: Arc<dyn ExportStore>,
    signer: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    bcrypt: Bcrypt,
    rate_limit: TokenRateLimit,
    refresh_keys: RefreshKeys,
    read_plans: ReadPlans,
    published: PublishedList,
    branding: Kept<Branding>,
    usage: Usage,
    refusals: Refusals,
    readiness: KeptReadiness,
    issuers: Issuers,
}

impl App {
    /// Builds the adapters the settings name: DynamoDB and KMS, or the embedded store and the
    /// local key.
    #[cfg(feature = "local")]
    pub async fn build(settings: Settings) -> Result<Self> {
        let Backend::Embedded {
            data_dir,
            audit_stream,
        } = &settings.backend
        else {
            return Self::on_aws(settings).await;
        };
        create_private_dir(data_dir)?;
        let path = data_dir.join("tokens.redb");
        let store = match audit_stream {
            None => EmbeddedStore::open(&path)?,
            Some(file) => {
                let store = EmbeddedStore::open_streaming_audits(&path)?;
                store.stream_audits_to(file)?;
                store
            }
        };
        let store = Arc::new(store);
        let signer = LocalKeys::in_folder(data_dir).signer()?.into();
        Ok(Self::with_parts(
            settings,
            store,
            signer,
            Arc::new(SystemClock),
        ))
    }

    /// Builds the DynamoDB and KMS adapters (what a Lambda function runs on); a configuration
    /// error if the settings name the embedded store.
    pub async fn on_aws(settings: Settings) -> Result<Self> {
        let Backend::Aws { table, .. } = &settings.backend else {
            return Err(Error::internal("DynamoDB and KMS are not configured"));
        };
        let aws = crate::adapters::aws::sdk_config_loader().load().await;
        let (dynamodb, kms) = (
            aws_sdk_dynamodb::Client::new(&aws),
            aws_sdk_kms::Client::new(&aws),
        );
        let signer = crate::adapters::aws::signer(&dynamodb, &kms, &settings.backend);
        let signer: Arc<dyn Signer> = signer.await?.into();
        let store = Arc::new(DynamoStore::new(dynamodb, table));
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
            bcrypt: Bcrypt::new(settings.bcrypt_cost),
            rate_limit: TokenRateLimit::new(settings.token_rate_limit_per_minute),
            refresh_keys: RefreshKeys::default(),
            read_plans: ReadPlans::new(),
            published: PublishedList::default(),
            branding: Kept::new(BRANDING_KEPT),
            usage: Usage::default(),
            refusals: Refusals::default(),
            readiness: KeptReadiness::default(),
            issuers: Issuers::new(settings.local_issuers.clone()),
            settings,
            vendors: Arc::clone(&store) as Arc<dyn VendorStore>,
            tokens: Arc::clone(&store) as Arc<dyn TokenStore>,
            refresh: Arc::clone(&store) as Arc<dyn RefreshStore>,
            rates: Arc::clone(&store) as Arc<dyn RateStore>,
            handoffs: Arc::clone(&store) as Arc<dyn HandoffStore>,
            revocations: Arc::clone(&store) as Arc<dyn RevocationStore>,
            audits: Arc::clone(&store) as Arc<dyn AuditStore>,
            exports: Arc::clone(&store) as Arc<dyn ExportStore>,
            directory: store as Arc<dyn DirectoryStore>,
            signer,
            clock,
        }
    }

    /// Makes the decoy hash now (one bcrypt hash at the configured cost), so that the first
    /// unknown clientId is not slower than a wrong secret. Only processes that check
    /// credentials need it; the others skip this cold-start cost.
    pub async fn prepare_credential_checks(&self) -> Result<()> {
        self.bcrypt.prepare().await
    }

    /// What a process stopping cleanly must not lose, written now: each token's counts of its
    /// last minute (`apiToken.used`), which would otherwise wait for its next use here.
    pub async fn shut_down(&self) {
        let now = self.clock.now();
        let days = self.settings.audit_retention_days;
        for past in self.usage.drain() {
            let stores = (&*self.audits, &*self.rates);
            crate::operations::record_minute(stores, &past, now, days).await;
        }
    }

    /// bcrypt checks of presented secrets this process ran so far (those shared with a
    /// concurrent check of the same credentials, recalled, or refused not counted): what its
    /// credential checks cost, for metrics and tests.
    pub fn bcrypt_checks_run(&self) -> u64 {
        self.bcrypt.checks_run()
    }

    /// Vendor credentials and vendor tokens.
    pub fn vendors(&self) -> Vendors<'_> {
        Vendors {
            store: &*self.vendors,
            revocations: &*self.revocations,
            signer: &*self.signer,
            clock: &*self.clock,
            bcrypt: &self.bcrypt,
            settings: &self.settings,
            audits: &*self.audits,
            refusals: &self.refusals,
            audit: self.auditor(),
        }
    }

    /// Changes are recorded as done by the service itself until an operation group's `by`
    /// names who acts.
    fn auditor(&self) -> Auditor<'_> {
        Auditor {
            by: Attribution::SYSTEM,
            clock: &*self.clock,
            retention_days: self.settings.audit_retention_days,
        }
    }

    /// Whether the store and the signer answer.
    pub fn health(&self) -> Health<'_> {
        Health {
            store: &*self.vendors,
            signer: &*self.signer,
            kept: &self.readiness,
        }
    }

    /// Exports of every record, and imports of them (`m2m-admin export`, `import`).
    pub fn backup(&self) -> Backup<'_> {
        Backup {
            exports: &*self.exports,
            vendors: &*self.vendors,
            directory: &*self.directory,
            tokens: &*self.tokens,
            revocations: &*self.revocations,
            refresh: &*self.refresh,
            rates: &*self.rates,
            audits: &*self.audits,
            audit: self.auditor(),
            local_issuers: &self.settings.local_issuers,
        }
    }

    /// The audit trail: reading it, and the vendor's own events.
    pub fn audits(&self) -> Audits<'_> {
        Audits {
            store: &*self.audits,
            refusals: &self.refusals,
            audit: self.auditor(),
        }
    }

    /// Exchange and refresh of API-token credentials for JWTs issued by `issuer`.
    pub fn credentials<'a>(&'a self, issuer: &'a str) -> Credentials<'a> {
        Credentials {
            issuer,
            tokens: &*self.tokens,
            revocations: &*self.revocations,
            refresh: &*self.refresh,
            rates: &*self.rates,
            directory: &*self.directory,
            signer: &*self.signer,
            clock: &*self.clock,
            bcrypt: &self.bcrypt,
            rate_limit: &self.rate_limit,
            refresh_keys: &self.refresh_keys,
            read_plans: &self.read_plans,
            published: &self.published,
            settings: &self.settings,
            audits: &*self.audits,
            usage: &self.usage,
            issuers: &self.issuers,
            client: None,
        }
    }

    /// API tokens as their owners manage them.
    pub fn api_tokens(&self) -> ApiTokens<'_> {
        ApiTokens {
            tokens: &*self.tokens,
            rates: &*self.rates,
            retirement: self.retirement(),
            directory: &*self.directory,
            clock: &*self.clock,
            bcrypt: &self.bcrypt,
            secret_format: self.settings.secret_format,
            audit: self.auditor(),
        }
    }

    /// The self-service portal: hand-offs, sessions and their users.
    pub fn portal(&self) -> Portal<'_> {
        Portal {
            handoffs: &*self.handoffs,
            directory: &*self.directory,
            signer: &*self.signer,
            clock: &*self.clock,
            audit: self.auditor(),
        }
    }

    /// Permissions, roles, tenants and users.
    pub fn directory(&self) -> Directory<'_> {
        Directory {
            directory: &*self.directory,
            branding: &self.branding,
            tokens: &*self.tokens,
            retirement: self.retirement(),
            audit: self.auditor(),
        }
    }

    fn retirement(&self) -> Retirement<'_> {
        Retirement {
            tokens: &*self.tokens,
            revocations: &*self.revocations,
            published: &self.published,
            clock: &*self.clock,
            access_ttl_seconds: self.settings.access_token_ttl_seconds,
        }
    }

    /// Whether the local server takes the client's address from `X-Forwarded-For`.
    pub fn trusts_forwarded_for(&self) -> bool {
        self.settings.trust_forwarded_for
    }

    /// The longest a request may take before it is answered 503.
    pub fn request_budget(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.request_budget_seconds)
    }

    pub fn public_key(&self) -> &PublicKey {
        self.signer.public_key()
    }

    /// What the app was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Every key whose JWTs verify, the signing key first.
    pub fn published_keys(&self) -> Vec<&PublicKey> {
        self.signer.published()
    }

    /// The JWTs' `iss` when the settings fix it: `M2M_ISSUER`, else `M2M_PUBLIC_URL`. Without
    /// either (on Lambda) it is the API's default endpoint, as each request's context names it.
    pub fn issuer(&self) -> Option<&str> {
        self.settings
            .issuer
            .as_deref()
            .or(self.settings.public_url.as_deref())
    }

    /// How long an access token lives, in seconds.
    pub fn access_token_ttl_seconds(&self) -> i64 {
        self.settings.access_token_ttl_seconds
    }

    /// Who may frame the portal page (CSP `frame-ancestors`).
    pub fn portal_frame_ancestors(&self) -> &str {
        &self.settings.portal_frame_ancestors
    }

    /// The configured public base URL, if any.
    pub fn public_url(&self) -> Option<&str> {
        self.settings.public_url.as_deref()
    }
}

#[cfg(feature = "local")]
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))
}
