//! Verify m2m-auth access tokens in your own API.
//!
//! ```no_run
//! # async fn run() -> Result<(), m2m_verify::Error> {
//! let verifier = m2m_verify::Verifier::discover("https://auth.example.com", "my-api").await?;
//! let claims = verifier.verify("eyJhbGciOiJSUzI1NiIs...").await?;
//! if claims.has_permission("reports.read") {
//!     println!("tenant {} may read reports", claims.tenant_id);
//! }
//! # Ok(()) }
//! ```
//!
//! The JWKS is fetched once and cached; a token signed with an unknown `kid` triggers one
//! refetch, at most once per [`Verifier::MIN_REFETCH_INTERVAL`] (adjustable) whether it works or
//! not, so forged `kid`s and a server that is down or slow cannot make the verifier hammer it.
//! Fetches run one at a time and outside the cache's lock: tokens signed with cached keys never
//! wait for one, and a failed fetch keeps the keys already known. Only RS256 is accepted; `iss`,
//! `aud` and `exp` are checked.

#[cfg(feature = "axum")]
pub mod axum;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is not one of ours, not for this API, tampered with or expired.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The JWKS or discovery document could not be fetched or read.
    #[error("cannot fetch signing keys: {0}")]
    Keys(String),
}

/// Which kind of credential the token was exchanged from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TokenType {
    #[serde(rename = "tenantApiToken")]
    Tenant,
    #[serde(rename = "userApiToken")]
    User,
}

/// What a verified m2m-auth access token says.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The API token's clientId.
    pub sub: String,
    pub tenant_id: String,
    /// Set on personal (user) tokens.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub exp: i64,
}

impl Claims {
    pub fn has_permission(&self, key: &str) -> bool {
        self.permissions.iter().any(|p| p == key)
    }

    /// True when the token holds at least one of `keys` (as Frontegg's SDKs check).
    pub fn has_any_permission(&self, keys: &[&str]) -> bool {
        keys.iter().any(|key| self.has_permission(key))
    }

    pub fn has_role(&self, key: &str) -> bool {
        self.roles.iter().any(|r| r == key)
    }
}

#[derive(Default)]
struct KeyCache {
    keys: Arc<HashMap<String, DecodingKey>>,
    /// The last fetch started, whatever came of it.
    attempted_at: Option<Instant>,
}

/// Verifies access tokens against one m2m-auth deployment.
pub struct Verifier {
    jwks_uri: String,
    validation: Validation,
    refetch_interval: Duration,
    http: reqwest::Client,
    /// Held only to read or swap, never across a fetch.
    cache: RwLock<KeyCache>,
    /// Held by the one fetch in flight; who waits for it then reads what it brought.
    fetching: Mutex<()>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Verifier {
    /// An unknown `kid` refetches the JWKS at most this often.
    pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
    /// A JWKS fetch that takes longer has failed.
    pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

    /// A verifier for tokens from `issuer` meant for `audience`, with keys from `jwks_uri`.
    pub fn new(jwks_uri: impl Into<String>, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            jwks_uri: jwks_uri.into(),
            validation,
            refetch_interval: Self::MIN_REFETCH_INTERVAL,
            http: http_client(Self::FETCH_TIMEOUT),
            cache: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// Changes how soon an unknown `kid` may refetch the JWKS again (default 30 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Changes how long a JWKS fetch may take before it counts as failed (default 10 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self
    }

    /// Reads issuer and JWKS location from `{base_url}/.well-known/openid-configuration`.
    pub async fn discover(base_url: &str, audience: &str) -> Result<Self, Error> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            base_url.trim_end_matches('/')
        );
        let discovery: Discovery = get_json(&reqwest::Client::new(), &url).await?;
        Ok(Self::new(discovery.jwks_uri, &discovery.issuer, audience))
    }

    /// Checks the signature (RS256 only), `iss`, `aud`, `exp` and the token type.
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Error::InvalidToken(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(Error::InvalidToken(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::InvalidToken("no kid".into()))?;
        let key = self.key(&kid).await?;
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| Error::InvalidToken(e.to_string()))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Error> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let _flight = self.fetching.lock().await;
        // A fetch that finished while this one waited may have brought the key, or may have
        // been the attempt of this interval.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let unknown = || Error::InvalidToken(format!("unknown kid {kid}"));
        let due = self
            .cache()
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.refetch_interval);
        if !due {
            return Err(unknown());
        }
        let fetched = self.fetch().await;
        // Recorded when it ends, whatever its result: a fetch that failed or timed out is the
        // interval's attempt too, and the known keys stay.
        let mut cache = self.cache_mut();
        cache.attempted_at = Some(Instant::now());
        cache.keys = Arc::new(fetched?);
        drop(cache);
        self.cached(kid).ok_or_else(unknown)
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.cache().keys.get(kid).cloned()
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, KeyCache> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, Error> {
        tracing::debug!(uri = self.jwks_uri, "fetching JWKS");
        let set: JwkSet = get_json(&self.http, &self.jwks_uri).await?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, Error> {
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| Error::Keys(e.to_string()))?
        .json()
        .await
        .map_err(|e| Error::Keys(e.to_string()))
}
