//! The per-token rate limit of exchanges and refreshes: at most `per_minute` JWTs per API token
//! in each minute of the clock (fixed windows), counted in the store so that every process
//! (every Lambda instance) shares one count. It protects the account's KMS `Sign` quota (1,000
//! per second, shared by every tenant) from one token's loop.
//!
//! Only callers who proved the credentials are counted (after bcrypt, or after the refresh
//! token's record was found), so nobody can use up a token's minute without its secret.
//!
//! A process does not write the count for every JWT: it reserves uses in steps that start at one
//! and double, up to a fiftieth of the limit, and spends them from memory. Steps a process holds
//! but does not spend before the minute ends are lost to that minute, so a token spread over
//! many instances may get somewhat fewer than `per_minute`, never more.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::{ClientId, Timestamp};
use crate::error::{Error, Result};
use crate::ports::RateStore;

const WINDOW_MILLIS: i64 = 60_000;
/// Leases kept in memory before those of past minutes are dropped.
const LEASES_KEPT: usize = 10_000;

pub(crate) struct TokenRateLimit {
    per_minute: u32,
    largest_step: u32,
    leases: Mutex<HashMap<ClientId, Lease>>,
}

/// Uses of one token this process reserved in one window and has not spent yet.
struct Lease {
    window: i64,
    left: u32,
    next_step: u32,
}

impl Lease {
    /// Nothing reserved yet in `window`; the first reservation is of one.
    fn empty(window: i64) -> Self {
        Self {
            window,
            left: 0,
            next_step: 1,
        }
    }
}

impl TokenRateLimit {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            largest_step: (per_minute / 50).max(1),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one JWT for `client_id` now, or refuses it with `Error::RateLimited` until the
    /// minute ends.
    pub(crate) async fn admit(
        &self,
        store: &dyn RateStore,
        client_id: &ClientId,
        now: Timestamp,
    ) -> Result<()> {
        let window = now.millis().div_euclid(WINDOW_MILLIS);
        let step = {
            let mut leases = self.leases()?;
            match leases.get_mut(client_id) {
                Some(lease) if lease.window == window && lease.left > 0 => {
                    lease.left -= 1;
                    return Ok(());
                }
                Some(lease) if lease.window == window => lease.next_step,
                _ => 1,
            }
        };
        let granted = store
            .reserve_uses(client_id, window, step, self.per_minute)
            .await?;
        if granted == 0 {
            let window_end = (window + 1) * WINDOW_MILLIS;
            let wait = (window_end - now.millis() + 999) / 1000;
            return Err(Error::RateLimited(u64::try_from(wait.max(1)).unwrap_or(1)));
        }
        let mut leases = self.leases()?;
        if leases.len() >= LEASES_KEPT {
            leases.retain(|_, lease| lease.window == window);
        }
        let lease = leases
            .entry(*client_id)
            .or_insert_with(|| Lease::empty(window));
        if lease.window != window {
            *lease = Lease::empty(window);
        }
        lease.left += granted - 1;
        lease.next_step = (step * 2).min(self.largest_step);
        Ok(())
    }

    fn leases(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ClientId, Lease>>> {
        self.leases
            .lock()
            .map_err(|_| Error::internal("lease lock"))
    }
}
