//! Revoked JWTs keyed by clientId; each write also forgets those no JWT needs any more.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::revocation::Revocation;
use crate::ports::RevocationStore;

#[derive(Serialize, Deserialize)]
struct Stored {
    before: i64,
    until: i64,
}

fn revocation(sub: ClientId, stored: &Stored) -> Revocation {
    Revocation {
        sub,
        before: Timestamp::from_millis(stored.before),
        until: Timestamp::from_millis(stored.until),
    }
}

#[async_trait]
impl RevocationStore for EmbeddedStore {
    async fn revoke(&self, revocations: &[Revocation]) -> Result<()> {
        let entries: Vec<(String, Vec<u8>)> = revocations
            .iter()
            .map(|r| {
                let stored = Stored {
                    before: r.before.millis(),
                    until: r.until.millis(),
                };
                Ok((r.sub.to_string(), to_json(&stored)?))
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
                let sub = ClientId::parse(key.value());
                kept.extend(
                    sub.map(|sub| revocation(sub, &stored))
                        .filter(|r| r.until > now),
                );
            }
            Ok(kept)
        })
        .await
    }

    async fn revocation(&self, sub: &ClientId, now: Timestamp) -> Result<Option<Revocation>> {
        let stored: Option<Stored> = self.get(REVOCATIONS, "revocation", sub.to_string()).await?;
        Ok(stored
            .map(|s| revocation(*sub, &s))
            .filter(|r| r.until > now))
    }
}
