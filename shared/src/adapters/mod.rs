//! Implementations of the ports: DynamoDB and KMS in production, an embedded database and a
//! local key for the local default (the embedded store only with the `local` feature).

pub mod aws;
pub mod clock;
pub mod dynamodb;
#[cfg(feature = "local")]
pub mod embedded;
pub mod kms;
pub mod local_key;
pub mod oidc;
pub(crate) mod records;
pub use records::{Exported, RECORD_FORMAT};
pub mod rotation;
pub mod wrapped_key;

pub use clock::SystemClock;
pub use dynamodb::DynamoStore;
#[cfg(feature = "local")]
pub use embedded::EmbeddedStore;
pub use kms::KmsSigner;
pub use local_key::{LocalKeySigner, LocalKeys};
pub use rotation::Rotation;
pub use wrapped_key::WrappedKeySigner;
