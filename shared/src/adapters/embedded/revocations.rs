//! Revoked JWTs keyed by clientId; each write also forgets those no JWT needs any more.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::revocation::Revocation;
use crate::ports::RevocationStore;

#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    before: i64,
    /// Absent on revocations made before any took effect later: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<i64>,
    until: i64,
}

pub(super) fn revocation(sub: ClientId, stored: &Stored) -> Revocation {
    Revocation {
        sub,
        before: Timestamp::from_millis(stored.before),
        from: Timestamp::from_millis(stored.from.unwrap_or(stored.before)),
        until: Timestamp::from_millis(stored.until),
    }
}

/// A token's revocation that holds at once is keyed by its clientId, the one that holds later
/// beside it, so that neither replaces the other.
const LATER: &str = "/later";

fn key_of(revocation: &Revocation) -> String {
    let sub = revocation.sub;
    match revocation.is_later() {
        true => format!("{sub}{LATER}"),
        false => sub.to_string(),
    }
}

fn sub_of(key: &str) -> Option<ClientId> {
    ClientId::parse(key.strip_suffix(LATER).unwrap_or(key)).ok()
}

#[async_trait]
impl RevocationStore for EmbeddedStore {
    async fn revoke(&self, revocations: &[Revocation]) -> Result<()> {
        let entries: Vec<(String, Vec<u8>)> = revocations
            .iter()
            .map(|r| {
                let stored = Stored {
                    before: r.before.millis(),
                    from: r.is_later().then(|| r.from.millis()),
                    until: r.until.millis(),
                };
                Ok((key_of(r), to_json(&stored)?))
            })
            .collect::<Result<_>>()?;
        let now = revocations.iter().map(|r| r.before).max();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(REVOCATIONS)?;
                if let Some(now) = now {
                    let mut gone = Vec::new();
                    for entry in table.iter()? {
                        let (key, value) = entry?;
                        let stored: Stored = read_json("revocation", value.value())?;
                        if stored.until <= now.millis() {
                            gone.push(key.value().to_owned());
                        }
                    }
                    for key in gone {
                        table.remove(key.as_str())?;
                    }
                }
                for (key, value) in &entries {
                    table.insert(key.as_str(), value.as_slice())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn revocations(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(REVOCATIONS)?;
            let mut kept = Vec::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                let stored: Stored = read_json("revocation", value.value())?;
                kept.extend(sub_of(key.value()).map(|sub| revocation(sub, &stored)));
            }
            Ok(Revocation::holding(kept, now))
        })
        .await
    }

    async fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>> {
        let (at_once, later) = tokio::try_join!(
            self.get::<Stored>(REVOCATIONS, "revocation", sub.to_string()),
            self.get::<Stored>(REVOCATIONS, "revocation", format!("{sub}{LATER}")),
        )?;
        let both = [at_once, later].into_iter().flatten();
        let held = Revocation::holding(both.map(|s| revocation(*sub, &s)), now);
        Ok(held.into_iter().next())
    }
}
