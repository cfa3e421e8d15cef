//! Audit events: each stored once by id, indexed under each of its scopes and day
//! (`<scope>␁<day>␁<id>`), and counted per scope and day (`<scope>␁<day>`: the count and when
//! the day's events stop being kept). Written inside the transaction of the change they record.
//!
//! When the store streams its events (`M2M_AUDIT_STREAM_FILE`), that transaction also queues
//! the event in an outbox, in commit order; a thread appends the queue to a JSON-lines file and
//! takes off the queue what the file holds, so no committed event is left out of the file.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::*;
use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery, PagePlan, Scope};
use crate::ports::AuditStore;

pub(super) const AUDITS: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_events");
pub(super) const AUDIT_INDEX: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_index");
pub(super) const AUDIT_COUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_counts");
/// Events waiting for the stream, keyed by a zero-padded number that grows in commit order.
pub(super) const AUDIT_OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_outbox");

/// Events the stream appends to its file at a time, at most.
const STREAMED_PER_WRITE: usize = 256;
/// How long the stream waits when its queue is empty, or after a failure.
const STREAM_IDLE: std::time::Duration = std::time::Duration::from_millis(200);
const STREAM_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Expired events deleted by each event's write, at most: the log shrinks as it grows.
const PURGED_PER_WRITE: usize = 32;

const SEP: char = '\u{1}';

fn index_key(scope: &Scope, day: &str, id: &str) -> String {
    format!("{}{SEP}{day}{SEP}{id}", scope.key())
}

fn count_key(scope: &Scope, day: &str) -> String {
    format!("{}{SEP}{day}", scope.key())
}

/// A count as stored: how many, and until when the day's events are kept (ms).
fn count_value(n: u64, keep_until: Timestamp) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[8..].copy_from_slice(&keep_until.millis().to_le_bytes());
    bytes
}

fn read_count(bytes: &[u8]) -> (u64, Timestamp) {
    let word = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .unwrap_or_default()
    };
    (
        u64::from_le_bytes(word(0..8)),
        Timestamp::from_millis(i64::from_le_bytes(word(8..16))),
    )
}

impl Db {
    /// Records `event` inside `txn`, the transaction of the change it records (and queues it
    /// for the stream, if the store streams), and deletes a few events no longer kept.
    pub(super) fn record_audit(
        &self,
        txn: &WriteTransaction,
        event: &AuditEvent,
    ) -> Result<(), redb::Error> {
        let json = write_json(event)?;
        if self.streams_audits {
            let mut outbox = txn.open_table(AUDIT_OUTBOX)?;
            let next = match outbox.last()? {
                Some((last, _)) => last.value().parse::<u64>().unwrap_or(0) + 1,
                None => 0,
            };
            outbox.insert(format!("{next:020}").as_str(), json.as_slice())?;
        }
        record_in(txn, event, &json)
    }
}

fn record_in(txn: &WriteTransaction, event: &AuditEvent, json: &[u8]) -> Result<(), redb::Error> {
    let day = event.day();
    txn.open_table(AUDITS)?.insert(event.id.as_str(), json)?;
    let mut index = txn.open_table(AUDIT_INDEX)?;
    let mut counts = txn.open_table(AUDIT_COUNTS)?;
    for scope in event.scopes() {
        index.insert(index_key(&scope, &day, &event.id).as_str(), [].as_slice())?;
        let key = count_key(&scope, &day);
        let n = counts
            .get(key.as_str())?
            .map_or(0, |v| read_count(v.value()).0);
        counts.insert(
            key.as_str(),
            count_value(n + 1, event.keep_until).as_slice(),
        )?;
    }
    drop((index, counts));
    purge(txn, event.at)
}

/// Deletes the oldest events no longer kept at `now`, a few at a time.
fn purge(txn: &WriteTransaction, now: Timestamp) -> Result<(), redb::Error> {
    let oldest: Vec<String> = {
        let index = txn.open_table(AUDIT_INDEX)?;
        let (start, end) = (format!("*{SEP}"), format!("*{}", '\u{2}'));
        let mut ids = Vec::new();
        for entry in index
            .range(start.as_str()..end.as_str())?
            .take(PURGED_PER_WRITE)
        {
            let key = entry?.0.value().to_owned();
            ids.extend(key.rsplit(SEP).next().map(str::to_owned));
        }
        ids
    };
    let mut events = txn.open_table(AUDITS)?;
    let mut index = txn.open_table(AUDIT_INDEX)?;
    let mut counts = txn.open_table(AUDIT_COUNTS)?;
    for id in oldest {
        let Some(bytes) = events.get(id.as_str())?.map(|v| v.value().to_vec()) else {
            continue;
        };
        let event: AuditEvent = read_json("audit event", &bytes)?;
        if event.keep_until > now {
            break;
        }
        events.remove(id.as_str())?;
        let day = event.day();
        for scope in event.scopes() {
            index.remove(index_key(&scope, &day, &id).as_str())?;
            let key = count_key(&scope, &day);
            let count = counts.get(key.as_str())?.map(|v| read_count(v.value()));
            match count {
                Some((n, until)) if n > 1 => {
                    counts.insert(key.as_str(), count_value(n - 1, until).as_slice())?;
                }
                _ => {
                    counts.remove(key.as_str())?;
                }
            }
        }
    }
    Ok(())
}

impl EmbeddedStore {
    /// Appends every event the outbox holds, oldest first, to the JSON-lines file at `path`
    /// (created if need be; one event as `GET /audits` shows it per line), on a thread of its
    /// own for as long as the store is open (it does not keep it open); the store's closing
    /// streams what is left. A line is written (and synced) before its event leaves the
    /// outbox, so a crash may write an event twice (its `id` tells), never lose one.
    /// Refuses a store opened without [`EmbeddedStore::open_streaming_audits`], or a file it
    /// cannot open.
    pub fn stream_audits_to(&self, path: &Path) -> Result<()> {
        if !self.db.streams_audits {
            return Err(Error::internal(
                "the store was opened without an audit stream",
            ));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                Error::internal(format!(
                    "cannot open the audit stream {}: {e}",
                    path.display()
                ))
            })?;
        let mut held = (self.db.stream_file.lock())
            .map_err(|_| Error::internal("the audit stream is poisoned"))?;
        *held = Some(file);
        drop(held);
        let db = Arc::downgrade(&self.db);
        let spawned = std::thread::Builder::new()
            .name("audit-stream".into())
            .spawn(move || {
                while let Some(db) = db.upgrade() {
                    let streamed = match db.stream_file.lock().as_deref_mut() {
                        Ok(Some(file)) => stream_some(&db, file),
                        _ => Ok(0),
                    };
                    drop(db);
                    match streamed {
                        Ok(0) => std::thread::sleep(STREAM_IDLE),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "audit events could not be streamed yet");
                            std::thread::sleep(STREAM_RETRY);
                        }
                    }
                }
            });
        spawned.map(drop).map_err(Error::internal)
    }
}

impl Drop for Db {
    /// Streams what the outbox still holds (the events of the last moments, such as the usage
    /// counts a stop writes), so that a clean stop leaves the stream whole.
    fn drop(&mut self) {
        let Ok(Some(file)) = self.stream_file.get_mut().map(Option::take) else {
            return;
        };
        let mut file = file;
        loop {
            match stream_some(self, &mut file) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "audit events left in the outbox for the next start");
                    break;
                }
            }
        }
    }
}

/// Appends the oldest queued events to `file`, then takes them off the queue; how many.
fn stream_some(db: &Db, file: &mut std::fs::File) -> Result<usize, redb::Error> {
    use std::io::Write;
    let queued: Vec<(String, Vec<u8>)> = {
        let txn = db.begin_read()?;
        let outbox = txn.open_table(AUDIT_OUTBOX)?;
        let mut queued = Vec::new();
        for entry in outbox.iter()?.take(STREAMED_PER_WRITE) {
            let (key, value) = entry?;
            queued.push((key.value().to_owned(), value.value().to_vec()));
        }
        queued
    };
    if queued.is_empty() {
        return Ok(0);
    }
    let mut lines = Vec::new();
    for (_, json) in &queued {
        let event: AuditEvent = read_json("queued audit event", json)?;
        let line = serde_json::to_string(&event.view())
            .map_err(|e| redb::Error::Corrupted(format!("audit event: {e}")))?;
        // JSON allows them raw inside strings; some readers of lines split there. Escaped,
        // each event stays one line for every reader (events recorded before they were
        // refused may hold them).
        let line = line
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
        lines.extend_from_slice(line.as_bytes());
        lines.push(b'\n');
    }
    // A failed write leaves no partial line behind: the file is cut back to its last line.
    let before = file.metadata()?.len();
    if let Err(e) = file.write_all(&lines).and_then(|()| file.sync_data()) {
        let _ = file.set_len(before);
        return Err(e.into());
    }
    let txn = db.begin_write()?;
    {
        let mut outbox = txn.open_table(AUDIT_OUTBOX)?;
        for (key, _) in &queued {
            outbox.remove(key.as_str())?;
        }
    }
    txn.commit()?;
    Ok(queued.len())
}

impl EmbeddedStore {
    /// Records `events` in one write transaction, as each alone would be: a trail carried over
    /// from elsewhere, or one made up to measure reads at scale.
    pub async fn import_events(&self, events: Vec<AuditEvent>) -> Result<()> {
        self.run(move |db| {
            let txn = db.begin_write()?;
            for event in &events {
                db.record_audit(&txn, event)?;
            }
            Ok(txn.commit()?)
        })
        .await
    }
}

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        self.import_events(vec![event.clone()]).await
    }

    async fn import_event(&self, event: &AuditEvent) -> Result<bool> {
        let event = event.clone();
        self.run(move |db| {
            let txn = db.begin_write()?;
            if txn.open_table(AUDITS)?.get(event.id.as_str())?.is_some() {
                return Ok(false); // dropped uncommitted
            }
            db.record_audit(&txn, &event)?;
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    async fn audits(&self, query: &AuditQuery, now: Timestamp) -> Result<AuditPage> {
        let query = query.clone();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let scope = query.scope.key();
            let (start, end) = (format!("{scope}{SEP}"), format!("{scope}\u{2}"));
            let mut days = Vec::new();
            for entry in txn
                .open_table(AUDIT_COUNTS)?
                .range(start.as_str()..end.as_str())?
            {
                let (key, value) = entry?;
                let (n, until) = read_count(value.value());
                let day = key
                    .value()
                    .rsplit(SEP)
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if until > now {
                    days.push((day, n));
                }
            }
            let plan = PagePlan::new(days, &query);
            let (index, events) = (txn.open_table(AUDIT_INDEX)?, txn.open_table(AUDITS)?);
            let mut page = Vec::new();
            for read in plan.days {
                let start = format!("{scope}{SEP}{}{SEP}", read.day);
                let end = format!("{scope}{SEP}{}\u{2}", read.day);
                let range = index.range(start.as_str()..end.as_str())?;
                let keys: Box<dyn Iterator<Item = _>> = if query.oldest_first {
                    Box::new(range)
                } else {
                    Box::new(range.rev())
                };
                let skip = usize::try_from(read.skip).unwrap_or(usize::MAX);
                for entry in keys.skip(skip).take(read.take) {
                    let key = entry?.0.value().to_owned();
                    let id = key.rsplit(SEP).next().unwrap_or_default();
                    if let Some(bytes) = events.get(id)? {
                        page.push(read_json("audit event", bytes.value())?);
                    }
                }
            }
            Ok(AuditPage {
                events: page,
                total: plan.total,
            })
        })
        .await
    }
}
