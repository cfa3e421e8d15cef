//! The signing keys of the OpenID issuers that trust policies name (see
//! [`crate::domain::federation`]), and the verification of a workload's token with them.
//!
//! An issuer's discovery document (`<issuer>/.well-known/openid-configuration`) and the JWKS it
//! names are fetched over https within [`FETCH_TIMEOUT`] (no redirect followed, at most
//! [`MAX_DOCUMENT_BYTES`] read, names resolving only to public addresses), then kept
//! [`KEYS_FRESH`]. One fetch per issuer runs at a time: requests that need it wait for it and
//! use what it brought. A token signed with a `kid` the keys lack fetches again, at most once
//! per [`MIN_REFETCH`] whatever came of the last attempt, so forged `kid`s cannot make the
//! service hammer an issuer, and an issuer that is down or hangs costs its own requests one
//! timeout, then answers at once until it may be tried again. A failed fetch keeps the keys
//! already known. At most [`MAX_ISSUERS`] issuers are kept; the one used least recently goes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::Timestamp;
use crate::domain::federation::{LEEWAY_SECONDS, LocalIssuers, MAX_REMAINING_SECONDS, is_public};
use crate::domain::rules::excerpt;
use crate::error::{Dependency, Error, Result};

/// How long fetching an issuer's discovery document and JWKS may take, together.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long fetched keys are used before they are fetched again.
pub const KEYS_FRESH: Duration = Duration::from_secs(600);
/// The least time between two fetches of one issuer's keys.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);
/// The most issuers whose keys are kept.
pub const MAX_ISSUERS: usize = 256;
/// The largest discovery document or JWKS read.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The largest workload token taken.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Only asymmetric signatures: a secret shared with the issuer could not be published.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A workload's token, before its signature is checked: what says where to check it.
pub struct Presented<'t> {
    token: &'t str,
    /// The `iss` it claims.
    pub issuer: String,
    algorithm: Algorithm,
    kid: Option<String>,
}

impl<'t> Presented<'t> {
    /// Refuses what is no signed JWT of an asymmetric algorithm naming its issuer.
    pub fn parse(token: &'t str) -> Result<Self> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::InvalidGrant(format!(
                "The token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let malformed = || Error::InvalidGrant("The token is not a signed JWT".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Error::InvalidGrant(format!(
                "The token is signed with {:?}; only asymmetric algorithms (RS, PS, ES, EdDSA) are taken",
                header.alg
            )));
        }
        let payload = token.split('.').nth(1).ok_or_else(malformed)?;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| malformed())?;
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        let claims: Iss = serde_json::from_slice(&payload).map_err(|_| malformed())?;
        let issuer = claims
            .iss
            .ok_or_else(|| Error::InvalidGrant("The token names no issuer (iss)".into()))?;
        Ok(Self {
            token,
            issuer,
            algorithm: header.alg,
            kid: header.kid,
        })
    }
}

/// A workload's token whose signature, issuer and times were checked.
pub struct Verified {
    pub claims: Map<String, Value>,
    /// When it expires (`exp`), in seconds.
    pub expires_at: i64,
    /// What names it once used: its issuer and `jti`, or, without a `jti`, the token itself.
    pub mark: String,
}

/// An issuer's keys as last fetched, and what came of the last attempt.
#[derive(Default)]
struct Held {
    keys: Option<Arc<HashMap<String, Jwk>>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// Why the last attempt failed, if it did.
    failure: Option<String>,
    /// Attempts finished: who waited for a fetch sees whether one ran meanwhile.
    attempts: u64,
    used_at: Option<Instant>,
}

#[derive(Default)]
struct Issuer {
    held: Mutex<Held>,
    fetching: tokio::sync::Mutex<()>,
}

/// What fetching keys can end in, before it becomes an [`Error`].
enum Lookup {
    Key(Box<Jwk>),
    /// The keys hold no such key (an `invalid_grant`).
    Unknown(String),
    /// The issuer could not be read, and no key is held (a 503 for this issuer).
    Down(String),
    /// Someone else's fetch finished while this one waited: look again.
    Again,
}

/// The issuers' keys, each fetched on first need.
pub struct Issuers {
    /// Made on first need: processes that never meet a workload token never pay for it.
    http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    local: LocalIssuers,
    issuers: Mutex<HashMap<String, Arc<Issuer>>>,
}

impl Issuers {
    pub fn new(local: LocalIssuers) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            local,
            issuers: Mutex::default(),
        }
    }

    fn http(&self) -> std::result::Result<&reqwest::Client, String> {
        let made = self.http.get_or_init(|| {
            let resolver = PublicOnly {
                loopback: !self.local.0.is_empty(),
            };
            reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(resolver))
                .build()
                .map_err(|e| format!("no HTTP client: {e}"))
        });
        made.as_ref().map_err(Clone::clone)
    }

    /// Checks `presented`'s signature with its issuer's key, then its times (with
    /// [`LEEWAY_SECONDS`]: `exp` required and at most [`MAX_REMAINING_SECONDS`] ahead, `nbf`,
    /// `iat` not ahead). Not its audience or other claims: the trust policies do.
    pub async fn verify(&self, presented: &Presented<'_>, now: Timestamp) -> Result<Verified> {
        let jwk = self
            .key(&presented.issuer, presented.kid.as_deref())
            .await?;
        let key = verifying_key(&jwk, presented.algorithm)?;
        let mut validation = Validation::new(presented.algorithm);
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.reject_tokens_expiring_in_less_than = 0;
        validation.set_issuer(&[&presented.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let decoded =
            jsonwebtoken::decode::<Map<String, Value>>(presented.token, &key, &validation)
                .map_err(|e| Error::InvalidGrant(refusal(&e)))?;
        let claims = decoded.claims;
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let expires_at = number("exp").unwrap_or_default();
        if expires_at - now.seconds() > MAX_REMAINING_SECONDS {
            return Err(Error::InvalidGrant(format!(
                "The token is valid for more than {MAX_REMAINING_SECONDS} s; use a short-lived one"
            )));
        }
        if claims.get("iat").is_some_and(|iat| !iat.is_number()) {
            return Err(Error::InvalidGrant(
                "The token's iat is not a number".into(),
            ));
        }
        if number("iat").is_some_and(|iat| iat > now.seconds() + LEEWAY_SECONDS) {
            return Err(Error::InvalidGrant(
                "The token was issued in the future (iat)".into(),
            ));
        }
        // What the signature covers (never the signature itself: an ECDSA signature has a
        // twin, (r, n - s), that verifies as well).
        let signed = presented
            .token
            .rsplit_once('.')
            .map_or("", |(signed, _)| signed);
        let once = match claims.get("jti") {
            Some(jti) => format!("{}\njti {jti}", presented.issuer),
            None => format!("{}\nsigned {signed}", presented.issuer),
        };
        let digest = Sha256::digest(once.as_bytes());
        Ok(Verified {
            claims,
            expires_at,
            mark: digest.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// The key `kid` of `issuer` (its only key when the token names none).
    async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Jwk> {
        let entry = self.issuer(issuer);
        for _ in 0..3 {
            match self.look_up(&entry, issuer, kid).await {
                Lookup::Key(jwk) => return Ok(*jwk),
                Lookup::Unknown(why) => return Err(Error::InvalidGrant(why)),
                Lookup::Down(why) => {
                    let cause = format!("issuer {issuer}: {why}");
                    return Err(Error::unavailable(Dependency::Issuer, cause));
                }
                Lookup::Again => {}
            }
        }
        Err(Error::unavailable(
            Dependency::Issuer,
            format!("issuer {issuer}: busy"),
        ))
    }

    async fn look_up(&self, entry: &Issuer, issuer: &str, kid: Option<&str>) -> Lookup {
        let (found, attempts) = {
            let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
            held.used_at = Some(Instant::now());
            let found = held.keys.as_ref().map(|keys| pick(keys, kid));
            let fresh = held.fetched_at.is_some_and(|t| t.elapsed() < KEYS_FRESH);
            let recent = held.attempted_at.is_some_and(|t| t.elapsed() < MIN_REFETCH);
            match found {
                Some(Ok(jwk)) if fresh || recent => return Lookup::Key(Box::new(jwk)),
                Some(Err(why)) if recent => return Lookup::Unknown(why),
                None if recent => {
                    let why = held.failure.clone().unwrap_or_else(|| "no keys".into());
                    return Lookup::Down(why);
                }
                _ => {}
            }
            (found, held.attempts)
        };
        let _fetching = entry.fetching.lock().await;
        if entry
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attempts
            != attempts
        {
            return Lookup::Again;
        }
        let fetched = self.fetch(issuer).await;
        let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
        held.attempts += 1;
        held.attempted_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                held.keys = Some(Arc::new(keys));
                held.fetched_at = held.attempted_at;
                held.failure = None;
            }
            Err(why) => {
                tracing::warn!(issuer, error = %why, "an issuer's keys could not be fetched");
                held.failure = Some(why.clone());
                // The keys known before still verify (a stale key beats none); without any,
                // this issuer is down.
                return match found {
                    Some(Ok(jwk)) => Lookup::Key(Box::new(jwk)),
                    Some(Err(_)) | None => Lookup::Down(why),
                };
            }
        }
        Lookup::Again
    }

    /// The entry of `issuer`, made if new; the least recently used goes beyond [`MAX_ISSUERS`].
    fn issuer(&self, issuer: &str) -> Arc<Issuer> {
        let mut issuers = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = issuers.get(issuer) {
            return entry.clone();
        }
        if issuers.len() >= MAX_ISSUERS {
            let used_at = |entry: &Issuer| entry.held.lock().map(|h| h.used_at).ok().flatten();
            let oldest = issuers
                .iter()
                .min_by_key(|(_, entry)| used_at(entry))
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                issuers.remove(&oldest);
            }
        }
        let entry = Arc::new(Issuer::default());
        issuers.insert(issuer.to_owned(), entry.clone());
        entry
    }

    /// The issuer's signing keys by `kid`: its discovery document, then the JWKS it names.
    async fn fetch(&self, issuer: &str) -> std::result::Result<HashMap<String, Jwk>, String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let read = async {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let discovery: Discovery = self.document(&url).await?;
            if discovery.issuer != issuer {
                return Err(format!(
                    "its discovery document names another issuer, {:?}",
                    excerpt(&discovery.issuer)
                ));
            }
            self.check_jwks_uri(issuer, &discovery.jwks_uri)?;
            let jwks: JwkSet = self.document(&discovery.jwks_uri).await?;
            let mut keys = HashMap::new();
            for jwk in jwks.keys {
                let kid = jwk.common.key_id.clone().unwrap_or_default();
                if keys.insert(kid.clone(), jwk).is_some() {
                    return Err(format!("its JWKS names kid {:?} twice", excerpt(&kid)));
                }
            }
            Ok(keys)
        };
        tokio::time::timeout(FETCH_TIMEOUT, read)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", FETCH_TIMEOUT.as_secs())))
    }

    /// The JWKS must be fetched as the issuer is: over https (or from the local issuer's own
    /// origin), from a host that is no private address.
    fn check_jwks_uri(&self, issuer: &str, jwks_uri: &str) -> std::result::Result<(), String> {
        let url = url::Url::parse(jwks_uri).map_err(|_| "its jwks_uri is not a URL".to_owned())?;
        if self.local.allows(issuer) {
            let origin = url::Url::parse(issuer).map(|i| i.origin());
            return match origin.is_ok_and(|o| o == url.origin()) {
                true => Ok(()),
                false => Err("a local issuer's jwks_uri must be on its own origin".into()),
            };
        }
        let private_literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            _ => false,
        };
        if url.scheme() != "https" || private_literal {
            return Err("its jwks_uri must be an https:// URL on a public host".into());
        }
        Ok(())
    }

    /// A JSON document of at most [`MAX_DOCUMENT_BYTES`], answered 200.
    async fn document<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> std::result::Result<T, String> {
        let mut response = self
            .http()?
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", cause(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not as expected: {e}"))
    }
}

/// `jwk` as a key that verifies `algorithm`: not one published for encryption, for other
/// operations than verifying, or for another algorithm.
fn verifying_key(jwk: &Jwk, algorithm: Algorithm) -> Result<DecodingKey> {
    let refused = |why: &str| Err(Error::InvalidGrant(why.to_owned()));
    let common = &jwk.common;
    if (common.public_key_use.as_ref()).is_some_and(|u| *u != PublicKeyUse::Signature) {
        return refused("The issuer's key is not for signing");
    }
    let verifies = |ops: &Vec<KeyOperations>| ops.contains(&KeyOperations::Verify);
    if (common.key_operations.as_ref()).is_some_and(|ops| !verifies(ops)) {
        return refused("The issuer's key is not for verifying");
    }
    let named = common.key_algorithm.map(|a| format!("{a:?}"));
    if named.is_some_and(|named| named != format!("{algorithm:?}")) {
        return refused("The token's algorithm is not the one its key is published for");
    }
    DecodingKey::from_jwk(jwk)
        .map_err(|_| Error::InvalidGrant("The issuer's key cannot be read".into()))
}

/// The key the token names: `kid`, or without one the issuer's only key.
fn pick(keys: &HashMap<String, Jwk>, kid: Option<&str>) -> std::result::Result<Jwk, String> {
    match kid {
        Some(kid) => keys
            .get(kid)
            .cloned()
            .ok_or_else(|| format!("The issuer publishes no key {:?}", excerpt(kid))),
        None => {
            let mut all = keys.values();
            match (all.next(), all.next()) {
                (Some(only), None) => Ok(only.clone()),
                _ => Err("The token names no kid, and its issuer has several keys".into()),
            }
        }
    }
}

/// What a refused token is told: what did not hold, never the token.
fn refusal(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "The token has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "The token is not valid yet (nbf)".into(),
        ErrorKind::InvalidSignature => "The token's signature does not verify".into(),
        ErrorKind::InvalidIssuer => "The token's issuer does not match".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("The token has no {claim} claim"),
        ErrorKind::InvalidAlgorithm => "The token's algorithm does not fit the issuer's key".into(),
        _ => "The token cannot be verified".into(),
    }
}

/// The innermost cause of a failed fetch (a timeout, a refused connection, a bad certificate).
fn cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    if error.is_timeout() {
        return "timed out".into();
    }
    source.to_string()
}

/// Resolves names to their public addresses only, so that no issuer name can point the
/// service at its own network (or at the cloud's metadata service); loopback too when local
/// issuers are allowed.
struct PublicOnly {
    loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let loopback = self.loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()) || (loopback && a.ip().is_loopback()))
                .collect();
            if found.is_empty() {
                let why = format!("{host} resolves to no public address");
                return Err(why.into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
