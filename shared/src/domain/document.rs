//! The document a directory record holds, typed by its kind.
//!
//! A document is stored as the JSON of its type, with nothing that names the type: the store
//! key says the kind, and a document is read by it ([`Document::read`]).

use std::ops::Deref;

use serde::Serialize;
use serde_json::Value;

use super::configuration::TokenSettings;
use super::directory::{EntityKind, KeyClaim, Permission, Role, Tenant, User};
use super::lives::DirectoryRecord;
use super::time::Timestamp;

/// A directory record as the store port carries it.
pub type Record = DirectoryRecord<Document>;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Document {
    Permission(Permission),
    Role(Role),
    Tenant(Tenant),
    User(User),
    /// The vendor's API-token settings ([`EntityKind::Configuration`]).
    Settings(TokenSettings),
}

impl Record {
    /// The key a live role or permission holds, and where; `None` for other records and for
    /// tombstones.
    pub fn key_claim(&self) -> Option<KeyClaim> {
        match self.doc.as_ref()? {
            Document::Permission(p) => Some(KeyClaim {
                kind: EntityKind::Permission,
                key: p.key.clone(),
                tenant: None,
            }),
            Document::Role(r) => Some(KeyClaim {
                kind: EntityKind::Role,
                key: r.key.clone(),
                tenant: r.tenant_id.clone(),
            }),
            _ => None,
        }
    }
}

/// A document of another kind than the one asked for.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {found:?} document where a {wanted:?} one was expected")]
pub struct WrongKind {
    pub wanted: EntityKind,
    pub found: EntityKind,
}

impl Document {
    /// The stored JSON `value` of a `kind` record.
    pub fn read(kind: EntityKind, value: Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            EntityKind::Permission => Self::Permission(serde_json::from_value(value)?),
            EntityKind::Role => Self::Role(serde_json::from_value(value)?),
            EntityKind::Tenant => Self::Tenant(serde_json::from_value(value)?),
            EntityKind::User => Self::User(serde_json::from_value(value)?),
            EntityKind::Configuration => Self::Settings(serde_json::from_value(value)?),
        })
    }

    /// The kind of record that holds it.
    pub fn kind(&self) -> EntityKind {
        match self {
            Self::Permission(_) => EntityKind::Permission,
            Self::Role(_) => EntityKind::Role,
            Self::Tenant(_) => EntityKind::Tenant,
            Self::User(_) => EntityKind::User,
            Self::Settings(_) => EntityKind::Configuration,
        }
    }

    /// The JSON it is stored as.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl DirectoryRecord<Value> {
    /// The record with its document read as a `kind` document.
    pub fn typed(self, kind: EntityKind) -> Result<Record, serde_json::Error> {
        self.map_doc(|value| Document::read(kind, value))
    }
}

impl Record {
    /// The record with its document as the JSON it is stored as.
    pub fn untyped(&self) -> Result<DirectoryRecord<Value>, serde_json::Error> {
        self.clone().map_doc(|doc| doc.to_value())
    }
}

/// A live document as answered: with when its record came into being and was last written
/// (the Unix epoch for a record written before these were kept, until its next write).
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped<T> {
    pub doc: T,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl<T: TryFrom<Document, Error = WrongKind>> Stamped<T> {
    /// The document of `record` with its stamps; `None` for a tombstone.
    pub fn of(record: &Record) -> Result<Option<Self>, WrongKind> {
        let Some(doc) = record.doc.clone() else {
            return Ok(None);
        };
        let updated = record.updated.unwrap_or(Timestamp::from_millis(0));
        Ok(Some(Self {
            doc: T::try_from(doc)?,
            created: record.created.unwrap_or(updated),
            updated,
        }))
    }
}

impl<T> Deref for Stamped<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.doc
    }
}

macro_rules! conversions {
    ($($variant:ident($type:ty) = $kind:ident),* $(,)?) => {$(
        impl From<$type> for Document {
            fn from(doc: $type) -> Self {
                Self::$variant(doc)
            }
        }

        impl TryFrom<Document> for $type {
            type Error = WrongKind;

            fn try_from(doc: Document) -> Result<Self, WrongKind> {
                match doc {
                    Document::$variant(doc) => Ok(doc),
                    other => Err(WrongKind {
                        wanted: EntityKind::$kind,
                        found: other.kind(),
                    }),
                }
            }
        }
    )*};
}

conversions! {
    Permission(Permission) = Permission,
    Role(Role) = Role,
    Tenant(Tenant) = Tenant,
    User(User) = User,
    Settings(TokenSettings) = Configuration,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_is_stored_as_the_json_of_its_type() {
        let value = json!({"id": "acme", "name": "Acme", "metadata": {}});
        let doc = Document::read(EntityKind::Tenant, value.clone()).unwrap();
        assert_eq!(doc.to_value().unwrap(), value);
        let tenant = Tenant::try_from(doc.clone()).unwrap();
        assert_eq!(Document::from(tenant), doc);
        assert_eq!(
            User::try_from(doc).unwrap_err(),
            WrongKind {
                wanted: EntityKind::User,
                found: EntityKind::Tenant
            }
        );
    }

    #[test]
    fn settings_are_the_configuration_kind() {
        let doc = Document::read(EntityKind::Configuration, json!({})).unwrap();
        assert_eq!(doc, Document::Settings(TokenSettings::default()));
        assert!(Document::read(EntityKind::Role, json!({})).is_err());
    }
}
