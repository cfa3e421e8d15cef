//! Secrets: generated here, shown once, stored only as bcrypt hashes.
//!
//! The default format (GitHub's token scheme): a prefix naming the credential kind, 43 base62
//! characters from the OS CSPRNG (256 bits), and a 6-character base62 CRC32 of those
//! characters. A leaked secret is findable with one regular expression
//! (`m2m[vtu]_[0-9A-Za-z]{49}`), and a mistyped one is refused before any store read or bcrypt
//! work.
//!
//! API-token secrets may instead be shaped as Frontegg's are, a random (version 4) UUID, for
//! clients that type them so: 122 random bits, no prefix and no checksum. Both formats are
//! accepted whichever one new tokens get, so switching breaks no token.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 5;
/// Every secret is this long, well inside bcrypt's 72-byte input limit.
pub const SECRET_LEN: usize = PREFIX_LEN + BODY_LEN + CHECKSUM_LEN;
const _: () = assert!(SECRET_LEN <= 72, "bcrypt reads at most 72 bytes");

/// Which credential a secret belongs to; the prefix says it, so a secret of one kind is
/// refused by the other kinds' endpoints before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Vendor,
    TenantToken,
    UserToken,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Vendor => "m2mv_",
            Self::TenantToken => "m2mt_",
            Self::UserToken => "m2mu_",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        [Self::Vendor, Self::TenantToken, Self::UserToken]
            .into_iter()
            .find(|kind| kind.prefix() == prefix)
    }
}

/// How new API-token secrets look (`M2M_SECRET_FORMAT`); vendor secrets are always scannable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecretFormat {
    /// `m2mt_…`/`m2mu_…`: a kind prefix, 256 random bits and a checksum.
    #[default]
    Scannable,
    /// Frontegg's: a version 4 UUID.
    Uuid,
}

impl std::str::FromStr for SecretFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "scannable" => Ok(Self::Scannable),
            "uuid" => Ok(Self::Uuid),
            _ => Err(()),
        }
    }
}

/// A plaintext secret. `Debug` hides it; only [`Secret::expose`] reveals it.
#[derive(Clone)]
pub struct Secret {
    /// `None` for a UUID, which may be a tenant or a personal token's.
    kind: Option<SecretKind>,
    text: SecretString,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, [REDACTED])", self.kind)
    }
}

/// bcrypt could not run (a worker thread failed, or the cost is out of range).
#[derive(Debug, thiserror::Error)]
#[error("bcrypt failed: {0}")]
pub struct HashFailed(String);

/// Why a string is not a secret of ours.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a well-formed secret")]
pub struct MalformedSecret;

impl Secret {
    pub fn generate(kind: SecretKind) -> Self {
        let body = random_base62(BODY_LEN);
        let text = format!("{}{body}{}", kind.prefix(), checksum(&body));
        Self {
            kind: Some(kind),
            text: text.into(),
        }
    }

    /// A secret for an API token of `kind` in `format`.
    pub fn generate_for_token(kind: SecretKind, format: SecretFormat) -> Self {
        match format {
            SecretFormat::Scannable => Self::generate(kind),
            SecretFormat::Uuid => {
                let mut bytes = [0u8; 16];
                // As in `random_base62`: no secret can be made safely without the OS RNG.
                #[allow(clippy::expect_used)]
                getrandom::fill(&mut bytes).expect("the OS random number generator failed");
                let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
                Self {
                    kind: None,
                    text: uuid.hyphenated().to_string().into(),
                }
            }
        }
    }

    /// Checks prefix, length, alphabet and checksum, or that a UUID is a random one; touches
    /// no store. A UUID is taken in any of its spellings and kept in its canonical one.
    pub fn parse(text: &str) -> Result<Self, MalformedSecret> {
        if let Ok(uuid) = uuid::Uuid::try_parse(text) {
            return match (uuid.get_version(), uuid.get_variant()) {
                (Some(uuid::Version::Random), uuid::Variant::RFC4122) => Ok(Self {
                    kind: None,
                    text: uuid.hyphenated().to_string().into(),
                }),
                _ => Err(MalformedSecret),
            };
        }
        if text.len() != SECRET_LEN || !text.is_ascii() {
            return Err(MalformedSecret);
        }
        let (prefix, rest) = text.split_at(PREFIX_LEN);
        let kind = SecretKind::from_prefix(prefix).ok_or(MalformedSecret)?;
        let (body, sum) = rest.split_at(BODY_LEN);
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) || checksum(body) != sum {
            return Err(MalformedSecret);
        }
        Ok(Self {
            kind: Some(kind),
            text: text.to_owned().into(),
        })
    }

    /// Whether this secret can be a `kind` credential's: a scannable secret's prefix names its
    /// kind; a UUID can be either API token's, never a vendor's.
    pub fn may_be(&self, kind: SecretKind) -> bool {
        match self.kind {
            Some(own) => own == kind,
            None => kind != SecretKind::Vendor,
        }
    }

    pub fn expose(&self) -> &str {
        self.text.expose_secret()
    }

    /// bcrypt at `cost`, on the blocking pool so the executor keeps serving.
    pub async fn hash(&self, cost: u32) -> Result<SecretHash, HashFailed> {
        let secret = self.clone();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(secret.expose(), cost))
            .await
            .map_err(|e| HashFailed(e.to_string()))?
            .map_err(|e| HashFailed(e.to_string()))?;
        Ok(SecretHash {
            bcrypt: hash,
            check: Some(self.quick_check()),
        })
    }

    /// 16 bits of the secret's SHA-256, kept beside its bcrypt hash: a presented secret that
    /// does not share them is wrong without any bcrypt work.
    pub fn quick_check(&self) -> QuickCheck {
        let digest = Sha256::digest(self.expose().as_bytes());
        QuickCheck(u16::from_be_bytes([digest[0], digest[1]]))
    }

    /// bcrypt verification, on the blocking pool. A hash that cannot be read counts as a mismatch.
    pub async fn matches(&self, hash: &SecretHash) -> Result<bool, HashFailed> {
        self.matches_padded(hash, Vec::new()).await
    }

    /// As [`Secret::matches`], but a mismatch also checks each hash of `padding` (hashes of no
    /// one's secret), so that it takes as long as a check at a higher cost would.
    pub async fn matches_padded(
        &self,
        hash: &SecretHash,
        padding: Vec<SecretHash>,
    ) -> Result<bool, HashFailed> {
        let secret = self.clone();
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || {
            let check = |hash: &SecretHash| bcrypt::verify(secret.expose(), &hash.bcrypt);
            let matched = check(&hash).unwrap_or(false);
            if !matched {
                for decoy in &padding {
                    let _ = check(decoy);
                }
            }
            matched
        })
        .await
        .map_err(|e| HashFailed(e.to_string()))
    }
}

/// 16 bits of a secret's SHA-256 (see [`Secret::quick_check`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QuickCheck(pub u16);

impl QuickCheck {
    /// As stored: four hex digits.
    pub fn as_stored(self) -> String {
        format!("{:04x}", self.0)
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        u16::from_str_radix(text, 16).ok().map(Self)
    }

    /// A check no secret was asked for: a decoy's, drawn from the OS CSPRNG.
    pub fn random() -> Self {
        let mut bytes = [0u8; 2];
        // As in `random_base62`: nothing safe can be done without the OS RNG.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Self(u16::from_be_bytes(bytes))
    }
}

/// A bcrypt hash of a secret, as stored, with the secret's quick check (absent on hashes made
/// before it was kept). `Debug` hides both.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    bcrypt: String,
    check: Option<QuickCheck>,
}

impl SecretHash {
    pub fn from_stored(bcrypt: String, check: Option<&str>) -> Self {
        Self {
            bcrypt,
            check: check.and_then(QuickCheck::from_stored),
        }
    }

    pub fn as_stored(&self) -> &str {
        &self.bcrypt
    }

    pub fn check(&self) -> Option<QuickCheck> {
        self.check
    }

    /// The bcrypt cost the hash was made at (`$2b$10$...`: 10), if it reads as a bcrypt hash.
    pub fn cost(&self) -> Option<u32> {
        let mut fields = self.bcrypt.split('$');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(""), Some(_version), Some(cost)) if cost.len() == 2 => cost.parse().ok(),
            _ => None,
        }
    }

    /// Whether `secret` may be the one hashed: `false` settles it without bcrypt; `true` needs
    /// bcrypt to tell (one wrong secret in 65,536 gets that far).
    pub fn may_match(&self, secret: &Secret) -> bool {
        self.check.is_none_or(|check| check == secret.quick_check())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([REDACTED])")
    }
}

/// `len` characters drawn uniformly from base62 with the OS CSPRNG (rejection sampling).
pub(crate) fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // The OS RNG failing is unrecoverable: no secret can be made safely without it.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut buf).expect("the OS random number generator failed");
        for b in buf {
            // 248 = 4 * 62: keeping only bytes below it makes every character equally likely.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Whether `text` holds, anywhere, what only a credential's holder has: one of the service's
/// scannable secrets, refresh tokens or hand-offs (`m2m`, a letter, `_`), a JWT (`eyJ…` with
/// two dots) or a bcrypt hash. What the audit trail keeps of what a caller sent is held to it.
/// (A secret of the `uuid` format cannot be told from any UUID.)
pub fn holds_credential(text: &str) -> bool {
    text.split_whitespace().any(is_credential)
}

/// `text` with each word that [`holds_credential`] replaced by `[redacted]`.
pub fn redacted(text: &str) -> String {
    if !holds_credential(text) {
        return text.to_owned();
    }
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|word| {
            if is_credential(word) {
                "[redacted]"
            } else {
                word
            }
        })
        .collect();
    words.join(" ")
}

/// A URL path with each segment that [`holds_credential`] replaced by `[redacted]`: what a log
/// line may say of a path, where a client may have put a secret or a token by mistake.
pub fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.split('/').any(is_credential) {
        return std::borrow::Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| match is_credential(segment) {
            true => "[redacted]",
            false => segment,
        })
        .collect();
    std::borrow::Cow::Owned(segments.join("/"))
}

fn is_credential(word: &str) -> bool {
    let bytes = word.as_bytes();
    let prefixed = bytes
        .windows(5)
        .any(|w| w.starts_with(b"m2m") && w[3].is_ascii_alphabetic() && w[4] == b'_');
    let jwt = word.contains("eyJ") && word.matches('.').count() >= 2;
    let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|h| word.contains(h));
    prefixed || jwt || bcrypt
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_found_anywhere_in_a_text_and_redacted_word_by_word() {
        let secret = Secret::generate(SecretKind::TenantToken);
        let agent = format!("ci/1.0 token={} (linux)", secret.expose());
        assert!(holds_credential(&agent));
        assert_eq!(redacted(&agent), "ci/1.0 [redacted] (linux)");
        for held in ["eyJhbGciOi.eyJzdWIi.c2ln", "$2b$10$abc", "x-m2mh_abc"] {
            assert!(holds_credential(held), "{held}");
        }
        for plain in ["curl/8.5.0", "m2m-cli/1.2 (eyJ)", "acme", "m2m-default-app"] {
            assert!(!holds_credential(plain), "{plain}");
            assert_eq!(redacted(plain), plain);
        }
    }

    use super::*;

    #[test]
    fn generated_secrets_parse_back_and_fit_bcrypt() {
        for kind in [
            SecretKind::Vendor,
            SecretKind::TenantToken,
            SecretKind::UserToken,
        ] {
            let secret = Secret::generate(kind);
            assert_eq!(secret.expose().len(), SECRET_LEN);
            assert!(Secret::parse(secret.expose()).is_ok_and(|s| s.may_be(kind)));
        }
    }

    #[test]
    fn uuid_secrets_are_random_uuids_of_either_api_token_and_never_a_vendors() {
        let secret = Secret::generate_for_token(SecretKind::UserToken, SecretFormat::Uuid);
        let uuid = uuid::Uuid::parse_str(secret.expose()).unwrap();
        assert_eq!(uuid.get_version(), Some(uuid::Version::Random));
        assert_eq!(uuid.hyphenated().to_string(), secret.expose());
        let parsed = Secret::parse(&secret.expose().to_uppercase()).unwrap();
        assert_eq!(parsed.expose(), secret.expose(), "one canonical spelling");
        assert!(parsed.may_be(SecretKind::TenantToken) && parsed.may_be(SecretKind::UserToken));
        assert!(!parsed.may_be(SecretKind::Vendor));
        let other = Secret::generate_for_token(SecretKind::UserToken, SecretFormat::Uuid);
        assert_ne!(other.expose(), secret.expose());
        // Not random UUIDs: a nil one, a time-based (v1) one.
        assert!(Secret::parse("00000000-0000-0000-0000-000000000000").is_err());
        assert!(Secret::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8").is_err());
    }

    #[test]
    fn a_mistyped_secret_fails_its_checksum() {
        let text = Secret::generate(SecretKind::TenantToken)
            .expose()
            .to_owned();
        let mut bytes = text.into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            Secret::parse(&String::from_utf8(bytes).unwrap_or_default()).map(|_| ()),
            Err(MalformedSecret)
        );
    }

    #[test]
    fn wrong_prefix_length_or_alphabet_is_malformed() {
        let text = Secret::generate(SecretKind::UserToken).expose().to_owned();
        assert!(Secret::parse(&text.replacen("m2mu_", "m2mx_", 1)).is_err());
        assert!(Secret::parse(&text[..text.len() - 1]).is_err());
        assert!(Secret::parse(&format!("{text}a")).is_err());
        assert!(Secret::parse(&text.replacen('_', "-", 1)).is_err());
        assert!(Secret::parse("").is_err());
    }

    #[tokio::test]
    async fn the_quick_check_settles_most_wrong_secrets_and_never_a_right_one() {
        let secret = Secret::generate(SecretKind::TenantToken);
        let hash = secret.hash(4).await.unwrap();
        assert!(hash.may_match(&secret));
        let refused = (0..1000)
            .filter(|_| !hash.may_match(&Secret::generate(SecretKind::TenantToken)))
            .count();
        assert!(
            refused > 980,
            "{refused} of 1000 wrong secrets settled without bcrypt"
        );
        let stored = hash.check().map(QuickCheck::as_stored);
        let again = SecretHash::from_stored(hash.as_stored().to_owned(), stored.as_deref());
        assert_eq!(again, hash, "the check survives storage");
        let legacy = SecretHash::from_stored(hash.as_stored().to_owned(), None);
        assert!(
            legacy.may_match(&Secret::generate(SecretKind::TenantToken)),
            "bcrypt decides"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::generate(SecretKind::Vendor);
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[tokio::test]
    async fn hashes_verify_only_their_own_secret() {
        let secret = Secret::generate(SecretKind::TenantToken);
        let other = Secret::generate(SecretKind::TenantToken);
        let hash = secret.hash(4).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(secret.matches(&hash).await.unwrap_or(false));
        assert!(!other.matches(&hash).await.unwrap_or(true));
        assert!(!format!("{hash:?}").contains(hash.as_stored()));
    }

    proptest::proptest! {
        /// Whatever arrives as a secret, parsing answers; it never panics.
        #[test]
        fn no_text_upsets_the_parser(text in "\\PC{0,80}") {
            let _ = Secret::parse(&text);
        }

        /// The checksum catches every one-character change of the body or of itself; a change
        /// of the prefix can at most name another kind (the body is then still checked).
        #[test]
        fn a_secret_with_one_character_changed_is_refused(
            at in 0..SECRET_LEN,
            replacement in proptest::char::range('!', '~'),
        ) {
            let secret = Secret::generate(SecretKind::TenantToken);
            let mut text = secret.expose().as_bytes().to_vec();
            proptest::prop_assume!(text[at] != replacement as u8);
            text[at] = replacement as u8;
            let changed = Secret::parse(std::str::from_utf8(&text).unwrap_or_default());
            proptest::prop_assert!(changed.is_err() || at < PREFIX_LEN, "{}", at);
            if let Ok(other) = changed {
                proptest::prop_assert!(!other.may_be(SecretKind::TenantToken));
            }
        }
    }
}
