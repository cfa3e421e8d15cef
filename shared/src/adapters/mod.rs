//! Implementations of the ports: DynamoDB and KMS in production, an embedded database and a
//! local key for the local default.

pub mod aws;
pub mod clock;
pub mod dynamodb;
pub mod embedded;
pub mod kms;
pub mod local_key;
mod records;
pub mod rotation;
pub mod wrapped_key;

pub use clock::SystemClock;
pub use dynamodb::DynamoStore;
pub use embedded::EmbeddedStore;
pub use kms::KmsSigner;
pub use local_key::LocalKeySigner;
pub use rotation::{LocalKeys, Rotation};
pub use wrapped_key::WrappedKeySigner;
