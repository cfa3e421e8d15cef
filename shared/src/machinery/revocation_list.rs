//! The signed list of revocations as this process serves it. Anyone may ask for it, so asking
//! must cost next to nothing: the list is read from the store and served from memory for
//! [`LIST_REFRESH_SECONDS`], then read again by one request while the others wait for it
//! (single flight); it is signed again only when what it says changed or its signature is
//! [`LIST_RESIGN_SECONDS`] old. So N requests cost at most one read and one signature per
//! interval and process, and a client holding the current document is answered by its `ETag`.
//!
//! A revocation this process writes makes the next request read again at once, so that a
//! single process (the local server) publishes its own revocations without delay, as its
//! introspection (which reads the store) sees them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::domain::Timestamp;
use crate::domain::revocation::{LIST_REFRESH_SECONDS, LIST_RESIGN_SECONDS, RevocationList};
use crate::error::Result;
use crate::ports::Clock;

/// The document served: the signed list (a JWT) and its entity tag.
#[derive(Debug)]
pub struct SignedList {
    pub jwt: String,
    /// A strong `ETag` (quoted), the same for the same document.
    pub etag: String,
}

impl SignedList {
    fn new(jwt: String) -> Self {
        let digest = Sha256::digest(jwt.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            etag: format!("\"{hex}\""),
            jwt,
        }
    }
}

/// The list last published and what this process knew when it read it.
struct Published {
    payload: RevocationList,
    signed: Arc<SignedList>,
    read_at: Timestamp,
    /// [`PublishedList::written`] when the store was read for it.
    written: u64,
}

#[derive(Default)]
pub(crate) struct PublishedList {
    current: RwLock<Option<Published>>,
    /// Held by the one request reading and signing the list.
    publishing: tokio::sync::Mutex<()>,
    /// Revocation writes of this process so far.
    written: AtomicU64,
}

impl PublishedList {
    /// Notes that this process wrote revocations: the next request reads them.
    pub(crate) fn note_written(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// `issuer`'s list: the one in memory while it is fresh, else what `read` says at the
    /// clock's time, signed by `sign` unless it says what the one in memory says.
    pub(crate) async fn serve(
        &self,
        issuer: &str,
        clock: &dyn Clock,
        read: impl AsyncFnOnce(Timestamp) -> Result<RevocationList>,
        sign: impl AsyncFnOnce(&RevocationList) -> Result<String>,
    ) -> Result<Arc<SignedList>> {
        if let Some(fresh) = self.fresh(issuer, clock.now()) {
            return Ok(fresh);
        }
        let _flight = self.publishing.lock().await;
        // The request ahead of this one may have published it meanwhile.
        if let Some(fresh) = self.fresh(issuer, clock.now()) {
            return Ok(fresh);
        }
        let (read_at, written) = (clock.now(), self.written.load(Ordering::SeqCst));
        let payload = read(read_at).await?;
        let (payload, signed) = match self.unchanged(&payload, read_at) {
            Some(kept) => kept,
            None => {
                let signed = Arc::new(SignedList::new(sign(&payload).await?));
                (payload, signed)
            }
        };
        let published = Published {
            payload,
            signed: Arc::clone(&signed),
            read_at,
            written,
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(published);
        Ok(signed)
    }

    /// The list in memory, if it is `issuer`'s, read less than [`LIST_REFRESH_SECONDS`] before
    /// `now` and since this process last wrote revocations.
    fn fresh(&self, issuer: &str, now: Timestamp) -> Option<Arc<SignedList>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let published = current.as_ref()?;
        // A clock set back does not keep an old list fresh.
        let age = now.millis() - published.read_at.millis();
        let fresh = published.payload.iss == issuer
            && (0..LIST_REFRESH_SECONDS * 1000).contains(&age)
            && published.written == self.written.load(Ordering::SeqCst);
        fresh.then(|| Arc::clone(&published.signed))
    }

    /// The list in memory and its signature, if `read` says the same and it may still be served.
    fn unchanged(
        &self,
        read: &RevocationList,
        now: Timestamp,
    ) -> Option<(RevocationList, Arc<SignedList>)> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let published = current.as_ref()?;
        let kept = &published.payload;
        let same = kept.iss == read.iss && kept.revoked == read.revoked;
        let young = (0..LIST_RESIGN_SECONDS).contains(&(now.seconds() - kept.iat));
        (same && young).then(|| (kept.clone(), Arc::clone(&published.signed)))
    }
}
