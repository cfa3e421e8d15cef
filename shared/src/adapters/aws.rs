//! What DynamoDB and KMS calls may cost, and what their failures mean to a client.
//!
//! Every call has a budget: 1 s to connect, 3 s per attempt, at most three attempts within 5 s
//! in all. A request as a whole has its budget
//! ([`crate::config::DEFAULT_REQUEST_BUDGET_SECONDS`]), and the template's function timeout
//! leaves room beyond it. A dependency that is unreachable, hangs or throttles therefore
//! makes a request fail within a bounded time, as a 503 the client may retry
//! ([`Error::Unavailable`]), never a 500 or a hang.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{KmsSigner, Rotation, WrappedKeySigner};
use crate::config::Backend;
use crate::error::{Dependency, Error};
use crate::ports::Signer;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK configuration every AWS client of the service is built from: the environment's
/// region and credentials, with the budgets above.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(1)),
        )
}

/// Error codes that say the service is busy or failing for now, not that the request is wrong.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionCanceledException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

/// A failed call to `service`: a 503 when the dependency is unreachable, slow, throttling or
/// failing on its side; a 500 when the call itself is wrong (a bug or a misconfiguration).
pub fn call_failed<E, R>(service: Dependency, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(failure) => failure
            .err()
            .code()
            .is_none_or(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    };
    let cause = format!("{service}: {}", DisplayErrorContext(e));
    if transient {
        Error::unavailable(service, cause)
    } else {
        Error::internal(cause)
    }
}

/// The signer `backend` (`Backend::Aws`) names: the KMS key, or a key wrapped under
/// `wrapping_key_id` (publishing the KMS key beside it), rotating from `previous_kms_key_id`
/// when one is set. One `GetPublicKey` per KMS key.
pub async fn signer(
    dynamodb: &aws_sdk_dynamodb::Client,
    kms: &aws_sdk_kms::Client,
    backend: &Backend,
) -> Result<Box<dyn Signer>, Error> {
    let Backend::Aws {
        table,
        kms_key_id,
        wrapping_key_id,
        previous_kms_key_id,
    } = backend
    else {
        return Err(Error::internal("an AWS signer needs the AWS backend"));
    };
    let kms_signer = KmsSigner::connect(kms.clone(), kms_key_id).await?;
    let current: Box<dyn Signer> = match wrapping_key_id {
        None => Box::new(kms_signer),
        Some(wrapping_key_id) => {
            let kms_key = vec![kms_signer.public_key().clone()];
            let wrapped = WrappedKeySigner::load_or_create(
                dynamodb,
                table,
                kms.clone(),
                wrapping_key_id,
                kms_key,
            );
            Box::new(wrapped.await?)
        }
    };
    Ok(match previous_kms_key_id {
        None => current,
        Some(previous) => {
            let previous = KmsSigner::connect(kms.clone(), previous).await?;
            Box::new(Rotation::new(current, Box::new(previous)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn service_error(code: Option<&str>) -> Error {
        let mut meta = ErrorMetadata::builder().message("m");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let e = GetItemError::generic(meta.build());
        call_failed(
            Dependency::DynamoDb,
            SdkError::<_, ()>::service_error(e, ()),
        )
    }

    #[test]
    fn throttling_and_server_faults_are_unavailable_and_the_rest_internal() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
        ] {
            assert!(matches!(service_error(Some(code)), Error::Unavailable(..)));
        }
        assert!(matches!(service_error(None), Error::Unavailable(..)));
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
        ] {
            assert!(
                matches!(service_error(Some(code)), Error::Internal(_)),
                "{code}"
            );
        }
        let timeout = SdkError::<GetItemError, ()>::timeout_error("slow");
        assert!(matches!(
            call_failed(Dependency::Kms, timeout),
            Error::Unavailable(..)
        ));
    }
}
