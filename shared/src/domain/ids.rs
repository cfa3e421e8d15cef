//! Identifiers, parsed once at the edge so the rest of the code cannot hold a bad one.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The public half of a credential: a UUID, as Frontegg issues them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(Uuid);

impl ClientId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// The hyphenated form only, as it is issued (`Uuid` alone also reads braced, URN and
    /// unhyphenated spellings of the same id).
    pub fn parse(text: &str) -> Result<Self, InvalidClientId> {
        let hyphenated = text.len() == 36;
        let id = Uuid::try_parse(text).ok().filter(|_| hyphenated);
        id.map(Self).ok_or(InvalidClientId)
    }

    /// The 32 hex digits of the unhyphenated form, as a refresh token carries it.
    pub fn from_simple(text: &str) -> Result<Self, InvalidClientId> {
        let simple = text.len() == 32;
        let id = Uuid::try_parse(text).ok().filter(|_| simple);
        id.map(Self).ok_or(InvalidClientId)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

/// Why a clientId was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a hyphenated UUID")]
pub struct InvalidClientId;

/// Why a name-like identifier was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "must be 1 to {MAX_ID_LEN} characters of letters, digits and . _ - : @ |, not only dots, \
     and not a secret"
)]
pub struct InvalidId;

const MAX_ID_LEN: usize = 128;

fn is_valid_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_LEN
        // `.` and `..` would name the parent of a path that carries the id.
        && !text.bytes().all(|b| b == b'.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@|".contains(&b))
        // An id is shown and recorded everywhere: a credential pasted as one is refused.
        && !super::secret::holds_credential(text)
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                if is_valid_id(text) { Ok(Self(text.to_owned())) } else { Err(InvalidId) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(text: String) -> Result<Self, InvalidId> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

name_id!(
    /// An organisation of the vendor's customer; every token belongs to one.
    TenantId
);
name_id!(
    /// A person in a tenant; personal tokens act as them.
    UserId
);
name_id!(
    /// A role or permission id, as granted to a tenant token.
    GrantId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_uuids() {
        let id = ClientId::generate();
        assert_eq!(ClientId::parse(&id.to_string()), Ok(id));
        assert_eq!(ClientId::parse("not-a-uuid"), Err(InvalidClientId));
        let simple = id.as_uuid().simple().to_string();
        assert_eq!(
            ClientId::parse(&simple),
            Err(InvalidClientId),
            "hyphenated only"
        );
        assert_eq!(ClientId::from_simple(&simple), Ok(id));
        assert_eq!(ClientId::from_simple(&id.to_string()), Err(InvalidClientId));
    }

    #[test]
    fn tenant_ids_refuse_empty_long_and_odd_characters() {
        assert!(TenantId::parse("acme-01").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse(&"a".repeat(129)).is_err());
        assert!(TenantId::parse("a#b").is_err());
        assert!(TenantId::parse("a b").is_err());
        assert!(TenantId::parse(".").is_err() && TenantId::parse("..").is_err());
    }
}
