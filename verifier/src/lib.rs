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
//!
//! Revoked JWTs (their API token deleted, or its secret rotated out at once) are refused: the
//! deployment's signed list (discovery's `revocations_uri`) is fetched again every
//! [`Verifier::REVOCATION_POLL_INTERVAL`] (adjustable), one fetch at a time, its signature checked
//! with the JWKS; when a fetch fails the last good list stays in use.

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
    /// The token was revoked (its API token deleted, or its secret rotated out at once).
    #[error("revoked token")]
    Revoked,
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
    #[serde(default)]
    pub iat: i64,
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

/// The last good list of revoked JWTs: for each `sub`, the second before which its JWTs are void.
#[derive(Default)]
struct RevocationCache {
    /// `None` until a list is first fetched.
    before: Option<HashMap<String, i64>>,
    /// The last fetch, whatever came of it.
    attempted_at: Option<Instant>,
}

/// Verifies access tokens against one m2m-auth deployment.
pub struct Verifier {
    jwks_uri: String,
    /// Where the signed list of revoked JWTs is, if the deployment publishes one.
    revocations_uri: Option<String>,
    revocation_interval: Duration,
    revocations: RwLock<RevocationCache>,
    /// Held by the one list fetch in flight.
    fetching_revocations: Mutex<()>,
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
    #[serde(default)]
    revocations_uri: Option<String>,
}

/// The signed list's payload.
#[derive(Deserialize)]
struct RevocationList {
    revoked: Vec<RevokedSub>,
}

#[derive(Deserialize)]
struct RevokedSub {
    sub: String,
    before: i64,
}

impl Verifier {
    /// An unknown `kid` refetches the JWKS at most this often.
    pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
    /// A JWKS fetch that takes longer has failed.
    pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
    /// The list of revoked JWTs is fetched again this often.
    pub const REVOCATION_POLL_INTERVAL: Duration = Duration::from_secs(30);

    /// A verifier for tokens from `issuer` meant for `audience`, with keys from `jwks_uri`.
    pub fn new(jwks_uri: impl Into<String>, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            jwks_uri: jwks_uri.into(),
            revocations_uri: None,
            revocation_interval: Self::REVOCATION_POLL_INTERVAL,
            revocations: RwLock::default(),
            fetching_revocations: Mutex::new(()),
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

    /// Refuses JWTs the deployment lists as revoked, fetching its signed list from `uri` at
    /// most once per poll interval ([`Verifier::discover`] sets it when the server has one).
    pub fn revocations_from(mut self, uri: impl Into<String>) -> Self {
        self.revocations_uri = Some(uri.into());
        self
    }

    /// Changes how often the list of revoked JWTs is fetched again (default 30 s).
    pub fn revocation_poll_interval(mut self, interval: Duration) -> Self {
        self.revocation_interval = interval;
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
        let verifier = Self::new(discovery.jwks_uri, &discovery.issuer, audience);
        Ok(match discovery.revocations_uri {
            Some(uri) => verifier.revocations_from(uri),
            None => verifier,
        })
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
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| Error::InvalidToken(e.to_string()))?;
        match self.revoked_before(&claims.sub).await {
            Some(before) if claims.iat < before => Err(Error::Revoked),
            _ => Ok(claims),
        }
    }

    /// The second before which `sub`'s JWTs are void, per the last good list. The list is
    /// fetched again once the poll interval has passed, by one caller at a time; the others go
    /// on with the list they have (the first of all waits for it). A list that cannot be
    /// fetched or does not verify leaves the last good one in use; with none yet, nothing is
    /// taken as revoked, so m2m-auth being down never stops verification.
    async fn revoked_before(&self, sub: &str) -> Option<i64> {
        let uri = self.revocations_uri.as_deref()?;
        if self.revocations_due() {
            let flight = match self.fetching_revocations.try_lock() {
                Ok(flight) => Some(flight),
                Err(_) if self.revocation_cache().before.is_none() => {
                    Some(self.fetching_revocations.lock().await)
                }
                Err(_) => None,
            };
            if flight.is_some() && self.revocations_due() {
                let fetched = self.fetch_revocations(uri).await;
                let mut cache = self
                    .revocations
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cache.attempted_at = Some(Instant::now());
                match fetched {
                    Ok(before) => cache.before = Some(before),
                    Err(e) => tracing::warn!(error = %e, "keeping the last list of revoked JWTs"),
                }
            }
        }
        self.revocation_cache().before.as_ref()?.get(sub).copied()
    }

    fn revocations_due(&self) -> bool {
        self.revocation_cache()
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.revocation_interval)
    }

    fn revocation_cache(&self) -> std::sync::RwLockReadGuard<'_, RevocationCache> {
        self.revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The list at `uri`, its signature checked with the JWKS like a token's (issuer, `exp`).
    async fn fetch_revocations(&self, uri: &str) -> Result<HashMap<String, i64>, Error> {
        let text = get(&self.http, uri)
            .await?
            .text()
            .await
            .map_err(|e| Error::Keys(e.to_string()))?;
        let header = jsonwebtoken::decode_header(&text).map_err(|e| Error::Keys(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| Error::Keys("the list names no kid".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(Error::Keys("the list is not signed with RS256".into()));
        }
        let key = self.key(&kid).await?;
        let mut validation = self.validation.clone();
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let list = jsonwebtoken::decode::<RevocationList>(&text, &key, &validation)
            .map_err(|e| Error::Keys(format!("the list does not verify: {e}")))?;
        Ok(list
            .claims
            .revoked
            .into_iter()
            .map(|r| (r.sub, r.before))
            .collect())
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
    get(http, url)
        .await?
        .json()
        .await
        .map_err(|e| Error::Keys(e.to_string()))
}

/// A successful answer to `GET url`; anything else is `Error::Keys`.
async fn get(http: &reqwest::Client, url: &str) -> Result<reqwest::Response, Error> {
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| Error::Keys(e.to_string()))
}
