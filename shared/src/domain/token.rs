//! Credentials as stored: API tokens (tenant and personal), vendor credentials, refresh tokens.

use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::federation::TrustPolicy;
use super::ids::{ClientId, GrantId, TenantId, UserId};
use super::lives::TokenLives;
use super::network::AllowedIps;
use super::secret::SecretHash;
use super::time::Timestamp;

/// Free-form JSON object the creator attaches; it travels into the JWT's `metadata` claim.
pub type Metadata = Map<String, Value>;

/// Whom an API token acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    /// An organisation's token (`tenantApiToken`).
    Tenant,
    /// A personal token of this user (`userApiToken`).
    User(UserId),
}

impl TokenOwner {
    /// The `type` claim of its JWTs.
    pub fn token_type(&self) -> super::jwt::TokenType {
        match self {
            Self::Tenant => super::jwt::TokenType::TenantApiToken,
            Self::User(_) => super::jwt::TokenType::UserApiToken,
        }
    }

    /// The user a personal token acts as.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User(user) => Some(user),
            Self::Tenant => None,
        }
    }
}

/// An API token's record. The secret itself is never kept, only its hash.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub client_id: ClientId,
    pub tenant_id: TenantId,
    pub owner: TokenOwner,
    pub created_by_user_id: Option<UserId>,
    /// The vendor credential whose token made it, when no user did.
    pub created_by_vendor: Option<String>,
    /// `None` when none was given.
    pub description: Option<String>,
    pub metadata: Metadata,
    pub role_ids: Vec<GrantId>,
    pub permission_ids: Vec<GrantId>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// When JWTs were last reserved for it: within a minute of its last exchange or refresh.
    pub last_used_at: Option<Timestamp>,
    /// How many JWTs have been reserved for it; each refresh token carries its JWT's number.
    pub issued: u64,
    /// The secret's hash, and what a rotation left of the one before.
    pub secret: SecretState,
    /// Where it may be exchanged and refreshed from; empty: anywhere.
    pub allowed_ips: AllowedIps,
    /// The workloads that may exchange their platform's token for its JWTs, with no secret.
    pub trust_policies: Vec<TrustPolicy>,
    /// The lives of the tenant and membership it was created in; it works only in them.
    pub lives: TokenLives,
}

/// An API token's secrets: the current one's hash and, after a rotation, the previous one's
/// while it still works. At most two secrets are ever live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretState {
    pub hash: SecretHash,
    pub previous: Option<PreviousSecret>,
    /// When the secret was last rotated.
    pub rotated_at: Option<Timestamp>,
    /// The current secret's number: 0 for the first, one more at each rotation (the previous
    /// secret's is one less). Refresh tokens carry the number of the secret that began their
    /// chain, so they end with it.
    pub generation: u32,
}

/// A secret of a token that still works, by its generation, and until when: `None` for the
/// current one (as long as the token), the end of its grace for a rotated-out one. What it
/// issues (JWTs, refresh tokens) ends with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSecret {
    pub generation: u32,
    pub until: Option<Timestamp>,
}

/// A secret replaced by a rotation, which still exchanges until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: SecretHash,
    pub until: Timestamp,
}

/// How long a rotated-out secret keeps working unless the rotation says (`graceMinutes`).
pub const DEFAULT_GRACE_MINUTES: u32 = 60;
/// The longest grace a rotation may give: a week.
pub const MAX_GRACE_MINUTES: u32 = 7 * 24 * 60;

impl SecretState {
    pub fn new(hash: SecretHash) -> Self {
        Self {
            hash,
            previous: None,
            rotated_at: None,
            generation: 0,
        }
    }

    /// The current secret.
    pub fn current(&self) -> LiveSecret {
        LiveSecret {
            generation: self.generation,
            until: None,
        }
    }

    /// The previous secret, while it still works at `now`.
    pub fn previous_secret(&self, now: Timestamp) -> Option<LiveSecret> {
        self.previous_live(now).map(|previous| LiveSecret {
            // A record rotated before secrets were numbered has none below 0.
            generation: self.generation.saturating_sub(1),
            until: Some(previous.until),
        })
    }

    /// The secret of `generation`, if it still works at `now`.
    pub fn live(&self, generation: u32, now: Timestamp) -> Option<LiveSecret> {
        if generation == self.generation {
            return Some(self.current());
        }
        self.previous_secret(now)
            .filter(|previous| previous.generation == generation)
    }

    /// The previous secret's hash, if it still works at `now`.
    pub fn previous_live(&self, now: Timestamp) -> Option<&PreviousSecret> {
        self.previous.as_ref().filter(|p| p.until > now)
    }

    /// The state after a rotation at `now` to `hash`: the current secret keeps working for
    /// `grace_minutes` (none: it stops now), and a previous one still in its grace stops.
    pub fn rotated(&self, hash: SecretHash, now: Timestamp, grace_minutes: u32) -> Self {
        Self {
            hash,
            previous: (grace_minutes > 0).then(|| PreviousSecret {
                hash: self.hash.clone(),
                until: now.plus_seconds(i64::from(grace_minutes) * 60),
            }),
            rotated_at: Some(now),
            generation: self.generation.wrapping_add(1),
        }
    }

    /// The same state with the current secret's hash made again (at another cost).
    pub fn rehashed(&self, hash: SecretHash) -> Self {
        Self {
            hash,
            ..self.clone()
        }
    }
}

impl ApiToken {
    pub fn user_id(&self) -> Option<&UserId> {
        self.owner.user()
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A vendor's (environment's) credential for the management API. A vendor holds several, each
/// named, so that one can be rotated or revoked while the others keep working.
#[derive(Clone, Debug)]
pub struct VendorCredential {
    pub client_id: ClientId,
    pub name: String,
    pub created_at: Timestamp,
    /// When it last logged in, to the minute (written at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// Its secrets, rotated as an API token's are; vendor tokens carry their generation.
    pub secret: SecretState,
}

/// The name of a credential made before credentials were named (the first, at bootstrap).
pub const DEFAULT_VENDOR_NAME: &str = "vendor";

/// A use is recorded when the last one is at least this old, so a busy credential costs one
/// write a minute, as an API token's `lastUsedAt`.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

impl VendorCredential {
    /// Whether a login at `now` is recorded as its last use: when the last one recorded is a
    /// minute old or more.
    pub fn records_use_at(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| at.plus_seconds(LAST_USED_RESOLUTION_SECONDS) <= now)
    }
}

/// At most this many refresh tokens of an API token are live: the newest by number.
pub const MAX_REFRESH_TOKENS: u64 = 100;

impl ApiToken {
    /// Whether refresh token number `serial` is among the newest [`MAX_REFRESH_TOKENS`] given
    /// out, when `unissued_above` of the numbers reserved above it are known never to have been.
    pub fn holds_refresh(&self, serial: u64, unissued_above: u64) -> bool {
        among_newest(serial, self.issued, unissued_above)
    }
}

/// Whether `serial` (at most `issued`) has fewer than [`MAX_REFRESH_TOKENS`] numbers given out
/// above it, `unissued_above` of those up to `issued` being known never to have been.
fn among_newest(serial: u64, issued: u64, unissued_above: u64) -> bool {
    serial > 0
        && serial <= issued
        && (issued - serial).saturating_sub(unissued_above) < MAX_REFRESH_TOKENS
}

/// The key that refresh tokens are authenticated with: derived (HKDF-SHA256) from the signer's
/// signature of [`RefreshKey::SEED`], so every instance of the service derives the same key,
/// nobody without the signing key can, and none is stored. RSASSA-PKCS1-v1_5 signatures are
/// deterministic; the seed contains no `.`, so it is never a JWT's signing input, and its
/// signature is never published.
pub struct RefreshKey(hmac::Key);

impl RefreshKey {
    pub const SEED: &[u8] = b"m2m-auth refresh-token key, version 1";

    pub fn from_signature(signature: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"m2m-auth").extract(signature);
        // Expanding to 32 bytes with SHA-256 cannot fail (the bound is 255 blocks).
        #[allow(clippy::expect_used)]
        let okm = prk
            .expand(&[b"refresh tokens"], hmac::HMAC_SHA256)
            .expect("32 bytes is within HKDF's bound");
        Self(hmac::Key::from(okm))
    }

    fn tag(&self, body: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, body.as_bytes()))
    }
}

/// A single-use refresh token: `m2mr_` + the API token's clientId (32 hex) + its number among
/// the API token's JWTs (16 hex) + when it was issued (unix seconds, 16 hex) + the generation
/// of the secret its chain began with (8 hex) + an HMAC-SHA256 of all that under the
/// [`RefreshKey`] (43 base64url characters).
///
/// Nothing is stored when one is issued. The tag shows the service made it; its number, against
/// the API token's count, that it is among the newest; its generation, that its secret still
/// works; a mark written when it is spent, that it was not used before.
pub struct RefreshToken {
    client_id: ClientId,
    serial: u64,
    issued_at: Timestamp,
    generation: u32,
    text: String,
}

const REFRESH_PREFIX: &str = "m2mr_";
/// Refresh tokens issued before they carried a generation: read as of generation 0.
const UNNUMBERED_BODY_LEN: usize = REFRESH_PREFIX.len() + 32 + 16 + 16;
const REFRESH_BODY_LEN: usize = UNNUMBERED_BODY_LEN + 8;
const TAG_LEN: usize = 43;
#[cfg(test)]
const REFRESH_LEN: usize = REFRESH_BODY_LEN + TAG_LEN;

impl RefreshToken {
    pub fn issue(
        key: &RefreshKey,
        client_id: ClientId,
        serial: u64,
        issued_at: Timestamp,
        generation: u32,
    ) -> Self {
        let body = format!(
            "{REFRESH_PREFIX}{}{serial:016x}{:016x}{generation:08x}",
            client_id.as_uuid().simple(),
            issued_at.seconds()
        );
        let text = format!("{body}{}", key.tag(&body));
        Self {
            client_id,
            serial,
            issued_at: Timestamp::from_millis(issued_at.seconds() * 1000),
            generation,
            text,
        }
    }

    /// The token if `text` is one this key made; `None` for anything else.
    pub fn parse(key: &RefreshKey, text: &str) -> Option<Self> {
        let body_len = text.len().checked_sub(TAG_LEN)?;
        let numbered = body_len == REFRESH_BODY_LEN;
        if !(numbered || body_len == UNNUMBERED_BODY_LEN)
            || !text.is_ascii()
            || !text.starts_with(REFRESH_PREFIX)
        {
            return None;
        }
        let (body, tag) = text.split_at(body_len);
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&key.0, body.as_bytes(), &tag).ok()?;
        let fields = &body[REFRESH_PREFIX.len()..];
        let hex = |range: std::ops::Range<usize>| u64::from_str_radix(&fields[range], 16).ok();
        let generation = if numbered {
            u32::try_from(hex(64..72)?).ok()?
        } else {
            0
        };
        Some(Self {
            client_id: ClientId::from_simple(&fields[..32]).ok()?,
            serial: hex(32..48)?,
            issued_at: Timestamp::from_millis(i64::try_from(hex(48..64)?).ok()?.checked_mul(1000)?),
            generation,
            text: text.to_owned(),
        })
    }

    /// The generation of the secret its chain began with.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// Its number among its API token's JWTs.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }

    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RefreshToken({}, #{}, [REDACTED])",
            self.client_id, self.serial
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_api_token_and_only_their_key_makes_them() {
        let key = RefreshKey::from_signature(b"one signature");
        let id = ClientId::generate();
        let at = Timestamp::from_millis(1_704_067_200_123);
        let token = RefreshToken::issue(&key, id, 42, at, 7);
        assert_eq!(token.expose().len(), REFRESH_LEN);
        let parsed = RefreshToken::parse(&key, token.expose()).unwrap();
        assert_eq!(parsed.client_id(), id);
        assert_eq!(parsed.serial(), 42);
        assert_eq!(parsed.generation(), 7);
        assert_eq!(parsed.issued_at().seconds(), at.seconds());
        let other_key = RefreshKey::from_signature(b"another signature");
        assert!(RefreshToken::parse(&other_key, token.expose()).is_none());
        let text = token.expose();
        let renumbered = format!("{}{:016x}{}", &text[..37], 43, &text[53..]);
        assert!(
            RefreshToken::parse(&key, &renumbered).is_none(),
            "the tag covers the number"
        );
        let regenerated = format!("{}{:08x}{}", &text[..69], 8, &text[77..]);
        assert!(
            RefreshToken::parse(&key, &regenerated).is_none(),
            "the tag covers the generation"
        );
        assert!(RefreshToken::parse(&key, &text[1..]).is_none());
        assert!(RefreshToken::parse(&key, "eyJhbGciOiJSUzI1NiJ9.e30.sig").is_none());
    }

    #[test]
    fn only_the_newest_hundred_refresh_numbers_are_held() {
        assert!(among_newest(150, 150, 0));
        assert!(among_newest(51, 150, 0));
        assert!(!among_newest(50, 150, 0), "the 101st newest");
        assert!(!among_newest(151, 150, 0), "never given out");
        assert!(among_newest(41, 150, 10), "ten above it never given out");
        assert!(!among_newest(40, 150, 10));
        assert!(among_newest(1, 1, 0));
        assert!(!among_newest(0, 0, 0), "numbers start at one");
    }

    #[test]
    fn refresh_tokens_made_before_generations_read_as_the_first() {
        let key = RefreshKey::from_signature(b"one signature");
        let id = ClientId::generate();
        let body = format!(
            "m2mr_{}{:016x}{:016x}",
            id.as_uuid().simple(),
            3,
            1_800_000_000
        );
        let old = format!("{body}{}", key.tag(&body));
        let parsed = RefreshToken::parse(&key, &old).unwrap();
        assert_eq!((parsed.serial(), parsed.generation()), (3, 0));
    }

    #[test]
    fn a_secret_works_by_generation_while_it_is_current_or_in_its_grace() {
        let hash = |text: &str| SecretHash::from_stored(text.to_owned(), None);
        let now = Timestamp::from_millis(1_800_000_000_000);
        let first = SecretState::new(hash("a"));
        assert_eq!(first.live(0, now), Some(first.current()));
        let second = first.rotated(hash("b"), now, 5);
        assert_eq!(second.generation, 1);
        assert_eq!(second.live(1, now).unwrap().until, None);
        let grace_end = now.plus_seconds(300);
        assert_eq!(second.live(0, now).unwrap().until, Some(grace_end));
        assert_eq!(second.live(0, grace_end), None, "the grace is over");
        let third = second.rotated(hash("c"), now, 0);
        assert_eq!(third.live(1, now), None, "rotated out at once");
        assert_eq!(
            third.live(0, now),
            None,
            "a rotation during a grace ends the older"
        );
    }

    proptest::proptest! {
        /// Whatever arrives as a refresh token, parsing answers; it never panics.
        #[test]
        fn no_text_upsets_the_refresh_parser(text in "\\PC{0,130}", long in "m2mr_[0-9a-f+-]{64}[A-Za-z0-9_-]{43}") {
            let key = RefreshKey::from_signature(b"one signature");
            proptest::prop_assert!(RefreshToken::parse(&key, &text).is_none());
            proptest::prop_assert!(RefreshToken::parse(&key, &long).is_none());
        }

        /// The tag covers every character: any one changed is refused.
        #[test]
        fn a_refresh_token_with_one_character_changed_is_refused(
            at in 0..REFRESH_LEN,
            replacement in proptest::char::range('!', '~'),
            serial: u64,
            seconds in 0..4_000_000_000_i64,
        ) {
            let key = RefreshKey::from_signature(b"one signature");
            let at_time = Timestamp::from_millis(seconds * 1000);
            let token = RefreshToken::issue(&key, ClientId::generate(), serial, at_time, 1);
            let mut text = token.expose().as_bytes().to_vec();
            proptest::prop_assume!(text[at] != replacement as u8);
            text[at] = replacement as u8;
            let changed = std::str::from_utf8(&text).unwrap_or_default();
            proptest::prop_assert!(RefreshToken::parse(&key, changed).is_none(), "{}", at);
        }
    }
}
