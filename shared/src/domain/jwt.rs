//! JWTs: the claims we issue, how they are signed through a [`Signer`], and how they are checked.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::lives::TokenLives;
use super::time::Timestamp;
use super::token::Metadata;

/// The `type` claim. It keeps a vendor token and an API-token JWT from standing in for each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    #[serde(rename = "tenantApiToken")]
    TenantApiToken,
    #[serde(rename = "userApiToken")]
    UserApiToken,
    #[serde(rename = "vendor")]
    Vendor,
    /// A portal session: only the token-management endpoints accept it.
    #[serde(rename = "portalSession")]
    PortalSession,
}

impl TokenType {
    /// The claim's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::TenantApiToken => "tenantApiToken",
            Self::UserApiToken => "userApiToken",
            Self::Vendor => "vendor",
            Self::PortalSession => "portalSession",
        }
    }
}

/// What an API token's JWT says (the contract's claim set).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessClaims {
    pub sub: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub metadata: Metadata,
    pub created_by_user_id: Option<String>,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub application_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A personal token's user's metadata from the directory (Frontegg's `userMetadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<Metadata>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// What a vendor token says.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorClaims {
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The vendor credential's clientId (Frontegg's claim).
    pub vendor_id: String,
    /// The same clientId, as the revocation list names it (absent from tokens made before).
    #[serde(default)]
    pub sub: String,
    /// The generation of the credential's secret that issued it: the token ends with that
    /// secret (a rotation's grace, a revocation). Absent from tokens made before: 0.
    #[serde(default)]
    pub secret_generation: u32,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// What a portal session says: whose it is, in which tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalClaims {
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The user.
    pub sub: String,
    pub tenant_id: String,
    /// The lives of the tenant and membership it was opened in: it ends with either.
    pub lives: TokenLives,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims for PortalClaims {
    const TYPES: &'static [TokenType] = &[TokenType::PortalSession];
    fn token_type(&self) -> TokenType {
        self.token_type
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Claims that can be checked generically: who signed them for what, and until when.
pub trait Claims: DeserializeOwned {
    const TYPES: &'static [TokenType];
    fn token_type(&self) -> TokenType;
    fn exp(&self) -> i64;
}

impl Claims for AccessClaims {
    const TYPES: &'static [TokenType] = &[TokenType::TenantApiToken, TokenType::UserApiToken];
    fn token_type(&self) -> TokenType {
        self.token_type
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl Claims for VendorClaims {
    const TYPES: &'static [TokenType] = &[TokenType::Vendor];
    fn token_type(&self) -> TokenType {
        self.token_type
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// The signing key is not an RSA key.
#[derive(Debug, thiserror::Error)]
#[error("signing public key is not RSA: {0}")]
pub struct NotRsa(String);

/// The public half of the signing key, in every form we publish it.
#[derive(Clone)]
pub struct PublicKey {
    kid: String,
    spki_der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
    decoding: DecodingKey,
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns).
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, NotRsa> {
        let key =
            aws_lc_rs::rsa::PublicKey::from_der(spki_der).map_err(|e| NotRsa(e.to_string()))?;
        let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(&key);
        // RFC 7638 thumbprint: stable for the key, different for the next one.
        let thumbprint_input = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&parts.e),
            URL_SAFE_NO_PAD.encode(&parts.n)
        );
        Ok(Self {
            kid: URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes())),
            spki_der: spki_der.to_vec(),
            decoding: DecodingKey::from_rsa_raw_components(&parts.n, &parts.e),
            n: parts.n,
            e: parts.e,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// PEM SPKI, as `GET /identity/resources/configurations/v1` returns it.
    pub fn pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// The JWK, as `/.well-known/jwks.json` lists it.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }
}

/// PEM armour: base64 in 64-character lines between BEGIN and END lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The part of a JWT that is signed: header (RS256, `kid`) and claims, base64url-encoded.
pub fn signing_input(kid: &str, claims: &impl Serialize) -> Result<String, serde_json::Error> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    Ok(format!(
        "{}.{}",
        base64_json(&header)?,
        base64_json(claims)?
    ))
}

/// The compact JWT: the signed input and its signature.
pub fn compact(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn base64_json(value: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))
}

/// A JWT that was not accepted; every cause looks the same to the caller.
#[derive(Debug, thiserror::Error)]
#[error("token refused")]
pub struct Refused;

/// Checks signature (RS256 only, by the published key its `kid` names), issuer, audience (when
/// given), type and expiry. Every failure is the same `Unauthorized`.
pub fn verify<C: Claims>(
    token: &str,
    keys: &[&PublicKey],
    issuer: &str,
    audience: Option<&str>,
    now: Timestamp,
) -> Result<C, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refused)?;
    let key = keys
        .iter()
        .find(|key| header.kid.as_deref() == Some(key.kid()))
        .ok_or(Refused)?;
    if header.alg != Algorithm::RS256 {
        return Err(Refused);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // Expiry is checked below against the service's clock, with no leeway.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.set_issuer(&[issuer]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    let claims = jsonwebtoken::decode::<C>(token, &key.decoding, &validation)
        .map_err(|_| Refused)?
        .claims;
    if !C::TYPES.contains(&claims.token_type()) || claims.exp() <= now.seconds() {
        return Err(Refused);
    }
    Ok(claims)
}
