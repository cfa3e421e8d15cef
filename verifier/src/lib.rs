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
//! Discovery must answer within [`Verifier::FETCH_TIMEOUT`], and the `jwks_uri` and
//! `revocations_uri` it names must share the base URL's scheme, host and port
//! ([`DiscoveryOptions`] allows other origins and binds the issuer too).
//!
//! The JWKS follows the deployment: it is fetched again in the background every
//! [`Verifier::KEY_REFRESH_INTERVAL`] (adjustable; sooner when its `Cache-Control: max-age`
//! says so, but not more often than [`Verifier::MIN_KEY_REFRESH_INTERVAL`]), and a good answer
//! replaces the keys, so a key retired from the JWKS stops verifying within one interval. Only
//! RSA keys for signing with RS256 are used: a key marked `use` other than `sig` or `alg` other
//! than RS256 is left out, and a JWKS naming one `kid` twice is refused (the last good keys
//! stay). A token signed with an unknown `kid` triggers one refetch, at most once per
//! [`Verifier::MIN_REFETCH_INTERVAL`] (adjustable) whether it works or not, so forged `kid`s
//! and a server that is down or slow cannot make the verifier hammer it. Fetches run one at a
//! time and outside the cache's lock: tokens signed with cached keys never wait for one, and a
//! failed fetch keeps the keys already known. Only RS256 is accepted; `iss`, `aud`, `exp` and
//! `nbf` are checked, and an `iat` more than 30 s ahead is refused.
//!
//! Revoked JWTs (their API token deleted, or its secret rotated out at once) are refused: the
//! deployment's signed list (discovery's `revocations_uri`) is fetched in the background every
//! [`Verifier::REVOCATION_POLL_INTERVAL`] (adjustable), its signature checked with the JWKS.
//! Requests never wait for it: they use the last good list (before the first, none is taken as
//! revoked, unless [`Verifier::warm_up`] was awaited at start-up), a failed fetch keeps it, and
//! a list older (by `iat`) than the one held is ignored, so a replayed list cannot bring
//! revoked JWTs back. The background tasks start with the first [`Verifier::verify`] (in a
//! tokio runtime) and end when the verifier is dropped.

#[cfg(feature = "axum")]
pub mod axum;

use std::collections::HashMap;
use std::sync::{Arc, Once, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
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

/// The keys of the last good JWKS, by `kid`.
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
    /// The held list's `iat`: an older list, replayed or served by a lagging cache, never
    /// replaces it (it would bring revoked JWTs back).
    issued_at: i64,
}

/// What a verifier is told at construction.
#[derive(Clone)]
struct Config {
    jwks_uri: String,
    /// Where the signed list of revoked JWTs is, if the deployment publishes one.
    revocations_uri: Option<String>,
    revocation_interval: Duration,
    key_refresh_interval: Duration,
    refetch_interval: Duration,
    validation: Validation,
    http: reqwest::Client,
}

/// What the verifier and its background refreshes share.
struct Shared {
    config: Config,
    /// Held only to read or swap, never across a fetch.
    cache: RwLock<KeyCache>,
    /// Held by the one JWKS fetch in flight; who waits for it then reads what it brought.
    fetching: Mutex<()>,
    revocations: RwLock<RevocationCache>,
}

/// Verifies access tokens against one m2m-auth deployment.
pub struct Verifier {
    shared: Arc<Shared>,
    /// Starts the background refreshes, on the first [`Verifier::verify`].
    refreshing: Once,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    revocations_uri: Option<String>,
}

/// How [`Verifier::discover_with`] reads and trusts a discovery document.
///
/// By default the document must answer within [`Verifier::FETCH_TIMEOUT`], and its `issuer`,
/// `jwks_uri` and `revocations_uri` must have the base URL's scheme, host and port (as OpenID
/// Connect Discovery requires of the issuer); a deployment whose `M2M_ISSUER` is not its URL is
/// named with [`DiscoveryOptions::allow_issuer`].
#[derive(Clone, Debug)]
pub struct DiscoveryOptions {
    timeout: Duration,
    origins: Vec<String>,
    issuers: Vec<String>,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            timeout: Verifier::FETCH_TIMEOUT,
            origins: Vec::new(),
            issuers: Vec::new(),
        }
    }
}

impl DiscoveryOptions {
    /// How long reading the discovery document may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets `jwks_uri` and `revocations_uri` also be under `origin` (e.g. a CDN in front).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Accepts `issuer` as the issuer too, besides the base URL's origin: for deployments whose
    /// `M2M_ISSUER` is not their URL.
    pub fn allow_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Refuses a document that sends keys, the list or the issuer away from `base`.
    fn check(&self, base: &str, discovery: &Discovery) -> Result<(), Error> {
        let allowed = |uri: &str| {
            same_origin(uri, base) || self.origins.iter().any(|origin| same_origin(uri, origin))
        };
        let uris = std::iter::once(&discovery.jwks_uri).chain(&discovery.revocations_uri);
        if let Some(uri) = uris.into_iter().find(|uri| !allowed(uri)) {
            return Err(Error::Keys(format!(
                "discovery names {uri}, away from {base}"
            )));
        }
        let issuer = &discovery.issuer;
        if !same_origin(issuer, base) && !self.issuers.contains(issuer) {
            return Err(Error::Keys(format!(
                "discovery names the issuer {issuer}, away from {base}"
            )));
        }
        Ok(())
    }
}

/// True when both parse as URLs of one scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin().is_tuple() && a.origin() == b.origin(),
        _ => false,
    }
}

/// The signed list's payload.
#[derive(Deserialize)]
struct RevocationList {
    iat: i64,
    revoked: Vec<RevokedSub>,
}

#[derive(Deserialize)]
struct RevokedSub {
    sub: String,
    before: i64,
}

/// A JWKS, each key read on its own so that one odd key does not spoil the others.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

impl Verifier {
    /// An unknown `kid` refetches the JWKS at most this often.
    pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
    /// A JWKS fetch that takes longer has failed.
    pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
    /// The list of revoked JWTs is fetched again this often.
    pub const REVOCATION_POLL_INTERVAL: Duration = Duration::from_secs(30);
    /// The JWKS is fetched again this often (sooner if its `Cache-Control: max-age` says so).
    pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
    /// A `max-age` shorter than this is read as this.
    pub const MIN_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

    /// A verifier for tokens from `issuer` meant for `audience`, with keys from `jwks_uri`.
    pub fn new(jwks_uri: impl Into<String>, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self::with_config(Config {
            jwks_uri: jwks_uri.into(),
            revocations_uri: None,
            revocation_interval: Self::REVOCATION_POLL_INTERVAL,
            key_refresh_interval: Self::KEY_REFRESH_INTERVAL,
            refetch_interval: Self::MIN_REFETCH_INTERVAL,
            validation,
            http: http_client(Self::FETCH_TIMEOUT),
        })
    }

    fn with_config(config: Config) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                cache: RwLock::default(),
                fetching: Mutex::new(()),
                revocations: RwLock::default(),
            }),
            refreshing: Once::new(),
        }
    }

    /// A fresh verifier with `change` made to this one's settings (builders run before use).
    fn configure(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        change(&mut config);
        Self::with_config(config)
    }

    /// Changes how soon an unknown `kid` may refetch the JWKS again (default 30 s).
    pub fn refetch_interval(self, interval: Duration) -> Self {
        self.configure(|c| c.refetch_interval = interval)
    }

    /// Changes how often the JWKS is fetched again in the background (default 5 min; a shorter
    /// `Cache-Control: max-age`, at least 30 s, brings it forward). Keys that left the JWKS stop
    /// verifying from then on.
    pub fn key_refresh_interval(self, interval: Duration) -> Self {
        self.configure(|c| c.key_refresh_interval = interval)
    }

    /// Refuses JWTs the deployment lists as revoked, fetching its signed list from `uri` in the
    /// background once per poll interval ([`Verifier::discover`] sets it when the server has one).
    pub fn revocations_from(self, uri: impl Into<String>) -> Self {
        let uri = uri.into();
        self.configure(|c| c.revocations_uri = Some(uri))
    }

    /// Changes how often the list of revoked JWTs is fetched again (default 30 s).
    pub fn revocation_poll_interval(self, interval: Duration) -> Self {
        self.configure(|c| c.revocation_interval = interval)
    }

    /// Changes how long a JWKS or list fetch may take before it counts as failed (default 10 s).
    pub fn fetch_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.http = http_client(timeout))
    }

    /// Reads issuer and JWKS location from `{base_url}/.well-known/openid-configuration`, with
    /// the default [`DiscoveryOptions`].
    pub async fn discover(base_url: &str, audience: &str) -> Result<Self, Error> {
        Self::discover_with(base_url, audience, DiscoveryOptions::default()).await
    }

    /// [`Verifier::discover`], with a timeout and the origins it trusts set by `options`.
    pub async fn discover_with(
        base_url: &str,
        audience: &str,
        options: DiscoveryOptions,
    ) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let discovery: Discovery = get_json(&http_client(options.timeout), &url).await?;
        options.check(base, &discovery)?;
        let verifier = Self::new(discovery.jwks_uri, &discovery.issuer, audience);
        Ok(match discovery.revocations_uri {
            Some(uri) => verifier.revocations_from(uri),
            None => verifier,
        })
    }

    /// Checks the signature (RS256 only), `iss`, `aud`, `exp`, `nbf` and `iat` (neither in the
    /// future beyond 30 s), the token type and the last good list of revoked JWTs.
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        self.start_refreshing();
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
        let key = self.shared.key(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.shared.config.validation)
            .map(|data| data.claims)
            .map_err(|e| Error::InvalidToken(e.to_string()))?;
        self.shared
            .config
            .check_issued_at(claims.iat)
            .map_err(Error::InvalidToken)?;
        match self.shared.revoked_before(&claims.sub) {
            Some(before) if claims.iat < before => Err(Error::Revoked),
            _ => Ok(claims),
        }
    }

    /// Fetches the JWKS and the list of revoked JWTs now and starts the background refreshes.
    /// Optional: await it at start-up so that the first requests already have the list (without
    /// it they find none until the first poll ends, and take nothing as revoked).
    pub async fn warm_up(&self) -> Result<(), Error> {
        let fetched = {
            let _flight = self.shared.fetching.lock().await;
            self.shared.store_keys(self.shared.fetch().await).map(drop)
        };
        let polled = self.shared.poll_revocations().await;
        self.start_refreshing();
        fetched.and(polled)
    }

    /// Spawns the JWKS refresh and the list poll, each holding the verifier weakly so that
    /// they end with it. Outside a tokio runtime there is nothing to spawn on: keys are then
    /// fetched only for unknown `kid`s.
    fn start_refreshing(&self) {
        self.refreshing.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            runtime.spawn(refresh_keys(Arc::downgrade(&self.shared)));
            if self.shared.config.revocations_uri.is_some() {
                runtime.spawn(poll_revocations(Arc::downgrade(&self.shared)));
            }
        });
    }
}

/// Fetches the JWKS again and again while the verifier lives.
async fn refresh_keys(shared: Weak<Shared>) {
    let Some(mut wait) = shared.upgrade().map(|s| s.config.key_refresh_interval) else {
        return;
    };
    loop {
        tokio::time::sleep(wait).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _flight = shared.fetching.lock().await;
        wait = shared.store_keys(shared.fetch().await).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "keeping the last good JWKS");
            shared
                .config
                .key_refresh_interval
                .min(shared.config.refetch_interval)
        });
    }
}

/// Fetches the list of revoked JWTs once per poll interval (start to start) while the
/// verifier lives; requests never wait for it.
async fn poll_revocations(shared: Weak<Shared>) {
    let Some(interval) = shared.upgrade().map(|s| s.config.revocation_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = shared.poll_revocations().await {
            tracing::warn!(error = %e, "keeping the last list of revoked JWTs");
        }
    }
}

impl Config {
    /// Refuses an `iat` later than now plus the leeway: a token from the future was not issued
    /// by a sane clock, and a list from the future would shut out every later list.
    fn check_issued_at(&self, iat: i64) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let latest = now.saturating_add(self.validation.leeway);
        if u64::try_from(iat).is_ok_and(|iat| iat > latest) {
            return Err(format!("issued in the future ({iat})"));
        }
        Ok(())
    }

    /// How long to wait before the next JWKS refresh, given the answer's `max-age`.
    fn next_key_refresh(&self, max_age: Option<Duration>) -> Duration {
        let max_age = max_age.map_or(Duration::MAX, |age| {
            age.max(Verifier::MIN_KEY_REFRESH_INTERVAL)
        });
        self.key_refresh_interval.min(max_age)
    }
}

impl Shared {
    /// The second before which `sub`'s JWTs are void, per the last good list; with none yet,
    /// nothing is taken as revoked, so m2m-auth being down never stops verification.
    fn revoked_before(&self, sub: &str) -> Option<i64> {
        let held = self
            .revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.before.as_ref()?.get(sub).copied()
    }

    /// Fetches the list and holds it, unless it is older than the one held.
    async fn poll_revocations(&self) -> Result<(), Error> {
        let Some(uri) = self.config.revocations_uri.as_deref() else {
            return Ok(());
        };
        let list = self.fetch_revocations(uri).await?;
        let mut held = self
            .revocations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.before.is_some() && list.iat < held.issued_at {
            return Err(Error::Keys(format!(
                "the list of {} is older than the one held ({})",
                list.iat, held.issued_at
            )));
        }
        held.issued_at = list.iat;
        held.before = Some(
            list.revoked
                .into_iter()
                .map(|r| (r.sub, r.before))
                .collect(),
        );
        Ok(())
    }

    /// The list at `uri`, its signature checked with the JWKS like a token's (issuer, `exp`,
    /// `nbf`, `iat`).
    async fn fetch_revocations(&self, uri: &str) -> Result<RevocationList, Error> {
        let text = get(&self.config.http, uri)
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
        let mut validation = self.config.validation.clone();
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let list = jsonwebtoken::decode::<RevocationList>(&text, &key, &validation)
            .map_err(|e| Error::Keys(format!("the list does not verify: {e}")))?
            .claims;
        self.config.check_issued_at(list.iat).map_err(Error::Keys)?;
        Ok(list)
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
            .is_none_or(|at| at.elapsed() >= self.config.refetch_interval);
        if !due {
            return Err(unknown());
        }
        self.store_keys(self.fetch().await)?;
        self.cached(kid).ok_or_else(unknown)
    }

    /// Records a fetch when it ends, whatever its result: a fetch that failed or timed out is
    /// the interval's attempt too, and the known keys stay. A good one replaces them all, so a
    /// key that left the JWKS stops verifying. Returns when to refresh next.
    fn store_keys(
        &self,
        fetched: Result<(HashMap<String, DecodingKey>, Option<Duration>), Error>,
    ) -> Result<Duration, Error> {
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.attempted_at = Some(Instant::now());
        let (keys, max_age) = fetched?;
        cache.keys = Arc::new(keys);
        Ok(self.config.next_key_refresh(max_age))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.cache().keys.get(kid).cloned()
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The JWKS's signing keys, and the answer's `max-age`.
    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Option<Duration>), Error> {
        tracing::debug!(uri = self.config.jwks_uri, "fetching JWKS");
        let response = get(&self.config.http, &self.config.jwks_uri).await?;
        let max_age = max_age(response.headers());
        let document: JwksDocument = response
            .json()
            .await
            .map_err(|e| Error::Keys(e.to_string()))?;
        Ok((signing_keys(document.keys)?, max_age))
    }
}

/// The RS256 signing keys of a JWKS by `kid`. Keys marked for another use (`use` other than
/// `sig`) or another algorithm (`alg` other than RS256) are left out; a `kid` named twice
/// makes the document an error, since which key it means is ambiguous.
fn signing_keys(keys: Vec<serde_json::Value>) -> Result<HashMap<String, DecodingKey>, Error> {
    let mut kids = std::collections::HashSet::new();
    let mut found = HashMap::new();
    for key in keys {
        let text = |field: &str| key.get(field).and_then(serde_json::Value::as_str);
        let Some(kid) = text("kid").map(str::to_owned) else {
            continue;
        };
        if !kids.insert(kid.clone()) {
            return Err(Error::Keys(format!("the JWKS names kid {kid} twice")));
        }
        let signs_rs256 = text("kty") == Some("RSA")
            && key.get("use").is_none_or(|u| u == "sig")
            && key.get("alg").is_none_or(|a| a == "RS256");
        let decoded = serde_json::from_value::<Jwk>(key)
            .ok()
            .and_then(|jwk| DecodingKey::from_jwk(&jwk).ok());
        match decoded {
            Some(decoded) if signs_rs256 => {
                found.insert(kid, decoded);
            }
            _ => tracing::debug!(kid, "JWKS key not used: not an RS256 signing key"),
        }
    }
    Ok(found)
}

/// `Cache-Control: max-age`, if the answer has one.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::CACHE_CONTROL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|directive| directive.trim().strip_prefix("max-age=")?.parse().ok())
        .map(Duration::from_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_max_age(value: &str) -> Option<Duration> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::CACHE_CONTROL, value.parse().ok()?);
        max_age(&headers)
    }

    #[test]
    fn cache_control_max_age_is_read_among_other_directives() {
        assert_eq!(
            with_max_age("public, max-age=120, must-revalidate"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(with_max_age("no-store"), None);
    }

    #[test]
    fn max_age_brings_the_key_refresh_forward_within_bounds() {
        let verifier = Verifier::new("http://127.0.0.1:1/jwks", "iss", "aud");
        let config = &verifier.shared.config;
        let refresh =
            |seconds: Option<u64>| config.next_key_refresh(seconds.map(Duration::from_secs));
        assert_eq!(refresh(None), Verifier::KEY_REFRESH_INTERVAL);
        assert_eq!(refresh(Some(60)), Duration::from_secs(60));
        assert_eq!(refresh(Some(1)), Verifier::MIN_KEY_REFRESH_INTERVAL);
        assert_eq!(refresh(Some(86_400)), Verifier::KEY_REFRESH_INTERVAL);
    }

    #[test]
    fn discovery_binds_keys_to_the_base_origin_and_the_issuer_on_request() {
        let base = "https://auth.example.com";
        let discovery = |issuer: &str, jwks: &str| Discovery {
            issuer: issuer.into(),
            jwks_uri: jwks.into(),
            revocations_uri: Some(format!("{base}/.well-known/revocations")),
        };
        let options = DiscoveryOptions::default();
        let own = discovery(base, "https://auth.example.com/.well-known/jwks.json");
        assert!(options.check(base, &own).is_ok());
        for jwks in [
            "https://auth.example.com:8443/jwks",
            "http://auth.example.com/jwks",
            "https://auth.example.com.evil.test/jwks",
        ] {
            assert!(
                options.check(base, &discovery(base, jwks)).is_err(),
                "{jwks}"
            );
        }
        let other_issuer = discovery("https://other.test", &own.jwks_uri);
        assert!(
            options.check(base, &other_issuer).is_err(),
            "the issuer is bound to the base URL"
        );
        let named = options.allow_issuer("https://other.test");
        assert!(named.check(base, &other_issuer).is_ok());
    }
}
