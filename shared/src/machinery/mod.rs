//! What the use cases in [`crate::operations`] run on, kept apart from them: bcrypt under
//! budgets shared fairly (`bcrypt`), with concurrent checks of one secret sharing a run
//! (`verified`); the per-token rate limit (`rate_limit`); the plans that read a token's records
//! in one round trip (`reads`); the one HMAC-keyed, bounded, short memory they use
//! (`remembered`); and the revocation list as published, read and signed at most once per
//! interval (`revocation_list`); and each token's uses per minute, for the audit trail
//! (`usage`); a value of the store kept a few seconds (`kept`).

pub(crate) mod bcrypt;
pub(crate) mod kept;
pub(crate) mod rate_limit;
pub(crate) mod reads;
pub(crate) mod remembered;
pub(crate) mod revocation_list;
pub(crate) mod usage;
pub(crate) mod verified;

pub(crate) use bcrypt::{Bcrypt, Party};
pub(crate) use kept::Kept;
pub(crate) use rate_limit::TokenRateLimit;
pub(crate) use reads::{ReadPlans, Reads, keys_of, live_docs};
pub(crate) use revocation_list::PublishedList;
pub use revocation_list::SignedList;
pub(crate) use usage::{Refusal, Refusals, Usage};
