//! What each API token's exchanges and refreshes came to, per minute: JWTs issued and
//! refusals by reason, counted in memory and recorded as one audit event per token, minute
//! and process (`apiToken.used`), written when the token is next used in a later minute. So no
//! flood of exchanges, right or wrong, turns into more than one write per token and minute.
//!
//! A process's counts of a token's last minute wait for its next use there, or for the process
//! to stop: the local server writes them all once its last request has finished; a Lambda
//! instance retired (or a process killed) loses them.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::domain::audit::{Action, Actor, Attribution, AuditEvent, Severity, Target};
use crate::domain::usage::{Counts, MinuteUsage, Refused};
use crate::domain::{ApiToken, ClientId, TenantId, Timestamp};

const MINUTE_MILLIS: i64 = 60_000;
/// Tokens counted at once before counts of past minutes are given up (written by their next
/// use only): a bound on memory whatever the number of tokens used.
const TOKENS_KEPT: usize = 10_000;

/// Why an exchange or refresh of a token whose record was found was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The wrong secret, or one no longer live.
    Secret,
    /// From outside the token's allowed addresses.
    AllowList,
    /// Beyond the token's JWTs per minute.
    RateLimit,
    /// Its kind of token, or API tokens, switched off by the vendor.
    Disabled,
}

impl Refusal {
    const ALL: [Self; 4] = [
        Self::Secret,
        Self::AllowList,
        Self::RateLimit,
        Self::Disabled,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::AllowList => "allowList",
            Self::RateLimit => "rateLimit",
            Self::Disabled => "disabled",
        }
    }
}

impl From<Refusal> for crate::metrics::Refused {
    fn from(why: Refusal) -> Self {
        match why {
            Refusal::Secret => Self::Credentials,
            Refusal::AllowList => Self::AllowList,
            Refusal::RateLimit => Self::RateLimit,
            Refusal::Disabled => Self::Disabled,
        }
    }
}

/// One token's counts in one minute.
struct Minute {
    minute: i64,
    tenant_id: TenantId,
    issued: u64,
    refused: [u64; 4],
}

/// Refusals of one actor recorded per minute and process, at most.
pub const REFUSALS_PER_MINUTE: u32 = 5;

/// How many refusals of each actor this process recorded in the current minute.
#[derive(Default)]
pub(crate) struct Refusals {
    recorded: Mutex<HashMap<String, (i64, u32)>>,
}

impl Refusals {
    /// Whether one more refusal of `actor` may be recorded at `now`.
    pub(crate) fn admit(&self, actor: &str, now: Timestamp) -> bool {
        let minute = now.millis().div_euclid(MINUTE_MILLIS);
        let Ok(mut recorded) = self.recorded.lock() else {
            return false;
        };
        if recorded.len() >= TOKENS_KEPT && !recorded.contains_key(actor) {
            recorded.retain(|_, (m, _)| *m == minute);
        }
        let entry = recorded.entry(actor.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= REFUSALS_PER_MINUTE
    }
}

#[derive(Default)]
pub(crate) struct Usage {
    minutes: Mutex<HashMap<ClientId, Minute>>,
}

impl Usage {
    /// Counts a JWT issued from `token` at `now`; its counts of an earlier minute, if any, to
    /// be written now.
    pub(crate) fn issued(&self, token: &ApiToken, now: Timestamp) -> Option<MinuteUsage> {
        self.count(token, now, |minute| minute.issued += 1)
    }

    /// Counts a refusal of `token` at `now`, as [`Usage::issued`].
    pub(crate) fn refused(
        &self,
        token: &ApiToken,
        why: Refusal,
        now: Timestamp,
    ) -> Option<MinuteUsage> {
        let at = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.count(token, now, |minute| minute.refused[at] += 1)
    }

    fn count(
        &self,
        token: &ApiToken,
        now: Timestamp,
        add: impl FnOnce(&mut Minute),
    ) -> Option<MinuteUsage> {
        let minute = now.millis().div_euclid(MINUTE_MILLIS);
        let fresh = || Minute {
            minute,
            tenant_id: token.tenant_id.clone(),
            issued: 0,
            refused: [0; 4],
        };
        let mut minutes = self.minutes.lock().ok()?;
        if minutes.len() >= TOKENS_KEPT && !minutes.contains_key(&token.client_id) {
            minutes.retain(|_, m| m.minute == minute);
        }
        let entry = minutes.entry(token.client_id).or_insert_with(fresh);
        let past = (entry.minute != minute).then(|| std::mem::replace(entry, fresh()));
        add(entry);
        drop(minutes);
        past.map(|past| past.finished(token.client_id))
    }

    /// Every count held: what a stopping process hands on.
    pub(crate) fn drain(&self) -> Vec<MinuteUsage> {
        let Ok(mut minutes) = self.minutes.lock() else {
            return Vec::new();
        };
        (minutes.drain())
            .map(|(client_id, minute)| minute.finished(client_id))
            .collect()
    }
}

impl Minute {
    fn finished(self, client_id: ClientId) -> MinuteUsage {
        let [secret, allow_list, rate_limit, disabled] = self.refused;
        MinuteUsage {
            client_id,
            tenant_id: self.tenant_id,
            minute: Timestamp::from_millis(self.minute * MINUTE_MILLIS),
            counts: Counts {
                issued: self.issued,
                refused: Refused {
                    secret,
                    allow_list,
                    rate_limit,
                    disabled,
                },
            },
        }
    }
}

/// A finished minute as its `apiToken.used` audit event, written at `now`.
pub(crate) fn used_event(usage: &MinuteUsage, now: Timestamp, retention_days: u32) -> AuditEvent {
    let refused = &usage.counts.refused;
    let by_reason = [
        refused.secret,
        refused.allow_list,
        refused.rate_limit,
        refused.disabled,
    ];
    let refused_fields: Map<String, Value> = Refusal::ALL
        .iter()
        .zip(by_reason)
        .map(|(why, n)| (why.name().to_owned(), json!(n)))
        .collect();
    let total = refused.total();
    let action = Action {
        name: "apiToken.used",
        severity: if total > 0 {
            Severity::Medium
        } else {
            Severity::Info
        },
        target: Target::new("apiToken", usage.client_id),
        tenant_id: Some(usage.tenant_id.clone()),
    };
    let by = Attribution::new(
        Actor::Credential {
            id: usage.client_id,
        },
        None,
        None,
    );
    let mut event = AuditEvent::of(action, &by, now, retention_days);
    event.description = format!(
        "API token {}: {} JWTs issued, {total} refused in the minute from {}",
        usage.client_id,
        usage.counts.issued,
        usage.minute.iso8601()
    );
    event.fields = Map::from_iter([
        ("minute".to_owned(), json!(usage.minute.iso8601())),
        ("issued".to_owned(), json!(usage.counts.issued)),
        ("refused".to_owned(), Value::Object(refused_fields)),
    ]);
    event
}
