//! Whether the service can serve: the process answers (alive), and its store and signer
//! answer within a short budget (ready). A readiness is kept a few seconds and made by one
//! caller at a time, so that a flood of probes never reaches the store or the key service at
//! its rate.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ports::{Signer, VendorStore};

/// How long each dependency has to answer a readiness check.
pub const READY_BUDGET: Duration = Duration::from_secs(2);
/// How long a readiness is kept before it is made again.
const KEPT: Duration = Duration::from_secs(5);

/// How a dependency answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    Ok,
    Failed,
    TimedOut,
}

/// What the store and the signer answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub store: Answer,
    pub signer: Answer,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.store == Answer::Ok && self.signer == Answer::Ok
    }

    /// What is not ready, in a sentence (empty when all is).
    pub fn problems(&self) -> Vec<String> {
        let said = |name: &str, answer: Answer| match answer {
            Answer::Ok => None,
            Answer::Failed => Some(format!("The {name} failed to answer")),
            Answer::TimedOut => Some(format!(
                "The {name} did not answer within {} s",
                READY_BUDGET.as_secs()
            )),
        };
        [said("store", self.store), said("signer", self.signer)]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The last readiness made, and when.
#[derive(Default)]
pub struct KeptReadiness(tokio::sync::Mutex<Option<(Instant, Readiness)>>);

pub struct Health<'a> {
    pub(crate) store: &'a dyn VendorStore,
    pub(crate) signer: &'a dyn Signer,
    pub(crate) kept: &'a KeptReadiness,
}

impl Health<'_> {
    /// Whether the store and the signer answer now (or did within the last few seconds).
    pub async fn ready(&self) -> Readiness {
        let mut kept = self.kept.0.lock().await;
        if let Some((at, readiness)) = *kept
            && at.elapsed() < KEPT
        {
            return readiness;
        }
        let answer = |outcome: Result<crate::Result<()>, tokio::time::error::Elapsed>| match outcome
        {
            Ok(Ok(())) => Answer::Ok,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a readiness check failed");
                Answer::Failed
            }
            Err(_) => Answer::TimedOut,
        };
        let store = async { self.store.has_vendor().await.map(drop) };
        let (store, signer) = tokio::join!(
            tokio::time::timeout(READY_BUDGET, store),
            tokio::time::timeout(READY_BUDGET, self.signer.check()),
        );
        let readiness = Readiness {
            store: answer(store),
            signer: answer(signer),
        };
        *kept = Some((Instant::now(), readiness));
        readiness
    }
}
