//! The per-token rate limit of exchanges and refreshes: at most `per_minute` JWTs per API token
//! in each minute of the clock (fixed windows), counted in the store so that every process
//! (every Lambda instance) shares one count. It protects the account's KMS `Sign` quota (1,000
//! per second, shared by every tenant) from one token's loop.
//!
//! Only callers who proved the credentials are counted (after bcrypt, or after the refresh
//! token's record was found), so nobody can use up a token's minute without its secret.
//!
//! A process does not write the count for every JWT: it reserves uses in steps and spends them
//! from memory. In a minute its first step is what it spent the minute before (at least one),
//! and each next one doubles, up to a tenth of the limit; so a token used steadily costs one
//! write a minute. Requests that find the reservation spent at the same moment each reserve a
//! step, and every step is kept and given out in turn. Steps a process holds but does not spend before the minute ends are lost to
//! that minute, so a token spread over many instances may get somewhat fewer than `per_minute`,
//! never more.
//!
//! Each use reserved is numbered (the token's count of JWTs ever reserved), and each JWT's
//! refresh token carries its number: the newest hundred numbers are the live refresh tokens.

use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use crate::domain::{ClientId, Timestamp};
use crate::error::{Error, Result};
use crate::ports::{RateStore, Reserved, UseWindow};

const WINDOW_MILLIS: i64 = 60_000;
/// Leases kept in memory before those of past minutes are dropped.
const LEASES_KEPT: usize = 10_000;

pub(crate) struct TokenRateLimit {
    per_minute: u32,
    largest_step: u32,
    leases: Mutex<HashMap<ClientId, Lease>>,
}

/// Uses of one token this process reserved in one window and not spent yet: runs of numbers,
/// one per reservation (requests that found the lease empty at once each reserve one; none of
/// them is given up), spent in order.
struct Lease {
    window: i64,
    runs: VecDeque<RangeInclusive<u64>>,
    next_step: u32,
    /// Spent in `window`: the first step of the next window.
    spent: u32,
    /// Numbers of earlier leases never given out, the latest [`WASTE_KEPT`] runs.
    wasted: Vec<RangeInclusive<u64>>,
}

/// Runs of numbers never given out that a lease remembers.
const WASTE_KEPT: usize = 16;

impl Lease {
    fn left(&self) -> u64 {
        self.runs.iter().map(run_length).sum()
    }

    /// The next number not given out, if any.
    fn take(&mut self) -> Option<u64> {
        while let Some(run) = self.runs.front_mut() {
            match run.next() {
                Some(number) => return Some(number),
                None => {
                    self.runs.pop_front();
                }
            }
        }
        None
    }

    /// How many numbers in `above+1..=upto` this process reserved and never gave out.
    fn unissued(&self, above: u64, upto: u64) -> u64 {
        let overlap = |run: &RangeInclusive<u64>| {
            let (start, end) = ((*run.start()).max(above + 1), (*run.end()).min(upto));
            (end + 1).saturating_sub(start)
        };
        let runs = self.wasted.iter().chain(&self.runs);
        runs.filter(|run| !run.is_empty()).map(overlap).sum()
    }
}

fn run_length(run: &RangeInclusive<u64>) -> u64 {
    if run.is_empty() {
        return 0;
    }
    (*run.end() + 1).saturating_sub(*run.start())
}

impl TokenRateLimit {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            largest_step: (per_minute / 10).max(1),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one JWT for `client_id` now and returns its number, or refuses it with
    /// `Error::RateLimited` until the minute ends (`Error::Unauthorized` if the token is gone).
    pub(crate) async fn admit(
        &self,
        store: &dyn RateStore,
        client_id: &ClientId,
        now: Timestamp,
    ) -> Result<u64> {
        let minute = now.millis().div_euclid(WINDOW_MILLIS);
        let (step, new_window) = {
            let mut leases = self.leases()?;
            match leases.get_mut(client_id) {
                Some(lease) if lease.window == minute && lease.left() > 0 => {
                    if let Some(number) = lease.take() {
                        lease.spent += 1;
                        return Ok(number);
                    }
                    (lease.next_step, false)
                }
                Some(lease) if lease.window == minute => (lease.next_step, false),
                Some(lease) if lease.window == minute - 1 => {
                    (lease.spent.clamp(1, self.largest_step), true)
                }
                _ => (1, true),
            }
        };
        let window = UseWindow { minute, new_window };
        let reserved = store
            .reserve_uses(client_id, window, step, self.per_minute, now)
            .await?
            .ok_or(Error::Unauthorized)?;
        if reserved.granted == 0 {
            let window_end = (minute + 1) * WINDOW_MILLIS;
            let wait = (window_end - now.millis() + 999) / 1000;
            return Err(Error::RateLimited(u64::try_from(wait.max(1)).unwrap_or(1)));
        }
        self.lease(client_id, minute, step, reserved)
    }

    /// Keeps the uses just `reserved` (in steps of `step`) as `client_id`'s lease in `minute`,
    /// and gives out the first of them.
    fn lease(
        &self,
        client_id: &ClientId,
        minute: i64,
        step: u32,
        reserved: Reserved,
    ) -> Result<u64> {
        let first = reserved.last_serial + 1 - u64::from(reserved.granted);
        let mut leases = self.leases()?;
        if leases.len() >= LEASES_KEPT {
            leases.retain(|_, lease| lease.window == minute);
        }
        let fresh = first + 1..=reserved.last_serial;
        let next_step = (step * 2).min(self.largest_step);
        match leases.get_mut(client_id) {
            // A concurrent request's reservation in the same minute: both are kept.
            Some(lease) if lease.window == minute => {
                lease.runs.push_back(fresh);
                lease.next_step = lease.next_step.max(next_step);
                lease.spent += 1;
            }
            Some(lease) => {
                // What is left of the last minute is lost to it, and remembered.
                let left: Vec<_> = lease.runs.drain(..).filter(|r| !r.is_empty()).collect();
                lease.wasted.extend(left);
                let keep = lease.wasted.len().saturating_sub(WASTE_KEPT);
                lease.wasted.drain(..keep);
                lease.window = minute;
                lease.runs.push_back(fresh);
                lease.next_step = next_step;
                lease.spent = 1;
            }
            None => {
                let lease = Lease {
                    window: minute,
                    runs: VecDeque::from([fresh]),
                    next_step,
                    spent: 1,
                    wasted: Vec::new(),
                };
                leases.insert(*client_id, lease);
            }
        }
        Ok(first)
    }

    /// How many of `client_id`'s numbers above `serial`, up to `issued` (all it has reserved),
    /// this process reserved and never gave out; so a refresh token's liveness counts only the
    /// refresh tokens given out after it (exactly, while one process serves the token).
    pub(crate) fn unissued_above(&self, client_id: &ClientId, serial: u64, issued: u64) -> u64 {
        self.leases()
            .ok()
            .and_then(|leases| Some(leases.get(client_id)?.unissued(serial, issued)))
            .unwrap_or(0)
    }

    fn leases(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ClientId, Lease>>> {
        self.leases
            .lock()
            .map_err(|_| Error::internal("lease lock"))
    }
}
