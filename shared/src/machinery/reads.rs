//! The directory records a JWT's claims are made from, read ahead with the token's record.
//!
//! The claims need the token's owners, its roles and their permissions. Which records those are,
//! the token's record says (its tenant and user; a tenant token's roles), then a personal token's
//! user (its roles), then the roles (their permissions): step by step, up to three round trips
//! after the token's. What one exchange of a token read, the next one almost always reads again,
//! so a process keeps, for credentials it issued a JWT for lately, the keys it read (a plan) and
//! reads them with the token's record in one round trip. Every record is still read on every
//! request, strongly consistent; the plan only says which. A record the plan lacks (a role given
//! since) is read after, as without a plan; one the plan holds in vain costs a read, no more.
//!
//! A plan is remembered under a tag of the clientId and the secret (see [`super::remembered`]),
//! so only a caller presenting the right secret gets the wider read; a wrong secret reads one
//! record. A refresh token is checked (its HMAC) before any read, so its plan goes by clientId.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::remembered::{Remembered, Tag};
use crate::domain::directory::EntityKind;
use crate::domain::document::{Document, Record, WrongKind};
use crate::domain::{ClientId, GrantId, Secret};
use crate::error::Result;
use crate::ports::DirectoryStore;

/// Where a directory record is stored.
pub(crate) type RecordKey = (EntityKind, String);

/// The keys a request read, to read ahead next time.
type Plan = Arc<[RecordKey]>;

/// The plans of credentials used lately.
pub(crate) struct ReadPlans(Remembered<Plan>);

impl ReadPlans {
    pub(crate) fn new() -> Self {
        // A plan is a few keys (a kilobyte for a token with dozens of grants): 10 MB at most.
        Self(Remembered::new(10_000))
    }

    /// What an exchange of `client_id` and `secret` finds its plan under.
    pub(crate) fn of_credentials(&self, client_id: &ClientId, secret: &Secret) -> Tag {
        let client = client_id.to_string();
        let parts = [b"exchange", client.as_bytes(), secret.expose().as_bytes()];
        self.0.tag(&parts)
    }

    /// What a refresh of a token of `client_id` finds its plan under.
    pub(crate) fn of_refresh(&self, client_id: &ClientId) -> Tag {
        self.0.tag(&[b"refresh", client_id.to_string().as_bytes()])
    }

    /// The keys to read with the token's record: none if nothing is remembered.
    pub(crate) fn plan(&self, tag: &Tag) -> Plan {
        self.0.recall(tag).unwrap_or_else(|| Arc::new([]))
    }

    /// Remembers what `reads` needed, for the next request of the same credentials.
    pub(crate) fn keep(&self, tag: Tag, reads: Reads<'_>) {
        self.0.remember(tag, reads.asked.into_iter().collect());
    }
}

/// The directory records of one request: those read ahead, then any more it asks for.
pub(crate) struct Reads<'a> {
    directory: &'a dyn DirectoryStore,
    read: HashMap<RecordKey, Option<Record>>,
    /// The keys asked for: the next plan.
    asked: HashSet<RecordKey>,
}

impl<'a> Reads<'a> {
    /// Nothing read yet.
    pub(crate) fn new(directory: &'a dyn DirectoryStore) -> Self {
        Self::ahead(directory, &[], Vec::new())
    }

    /// The `records` read ahead, of `keys` in order.
    pub(crate) fn ahead(
        directory: &'a dyn DirectoryStore,
        keys: &[RecordKey],
        records: Vec<Option<Record>>,
    ) -> Self {
        Self {
            directory,
            read: keys.iter().cloned().zip(records).collect(),
            asked: HashSet::new(),
        }
    }

    /// The records of `keys`, in their order: those read ahead, and the rest in one round trip.
    pub(crate) async fn records(&mut self, keys: &[RecordKey]) -> Result<Vec<Option<Record>>> {
        let mut missing: Vec<RecordKey> = Vec::new();
        for key in keys {
            if self.asked.insert(key.clone()) && !self.read.contains_key(key) {
                missing.push(key.clone());
            }
        }
        if !missing.is_empty() {
            let records = self.directory.records(&missing).await?;
            self.read.extend(missing.into_iter().zip(records));
        }
        Ok(keys
            .iter()
            .map(|key| self.read.get(key).cloned().flatten())
            .collect())
    }

    /// The live records of `kind` among `ids`, in their order; the deleted and the missing are
    /// left out.
    pub(crate) async fn live<T: TryFrom<Document, Error = WrongKind>>(
        &mut self,
        kind: EntityKind,
        ids: &[GrantId],
    ) -> Result<Vec<T>> {
        live_docs(self.records(&keys_of(kind, ids)).await?)
    }
}

/// The store keys of the `kind` records `ids`.
pub(crate) fn keys_of(kind: EntityKind, ids: &[GrantId]) -> Vec<(EntityKind, String)> {
    ids.iter()
        .map(|id| (kind, id.as_str().to_owned()))
        .collect()
}

/// The documents of the live records among `records`, as `T`, in their order.
/// A document of another kind than `T` is an internal error.
pub(crate) fn live_docs<T: TryFrom<Document, Error = WrongKind>>(
    records: impl IntoIterator<Item = Option<Record>>,
) -> Result<Vec<T>> {
    records
        .into_iter()
        .filter_map(|record| record.and_then(|r| r.doc))
        .map(|doc| Ok(T::try_from(doc)?))
        .collect()
}
