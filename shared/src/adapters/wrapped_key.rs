//! The second signing mode, past KMS's `Sign` quota: an RSA-2048 key the service makes itself,
//! whose private half is stored only encrypted under a symmetric KMS key (`Encrypt`), and is
//! decrypted (`Decrypt`) once per process, on its first signature, then used in memory. So a
//! JWT costs no KMS call, and functions that only publish the public key never decrypt it.
//!
//! The key is one item of the table (`SIGNING_KEY` / `WRAPPED`): the public key in the clear
//! (SPKI DER) and the encrypted PKCS#8 private key, bound by an encryption context to its
//! purpose. The first process to start makes it; of two starting at once, one conditional write
//! wins and both use that key.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lc_rs::rsa::KeyPair;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use tokio::sync::OnceCell;

use super::local_key::{generate_pkcs8, public_key_of, sign_with};
use crate::domain::PublicKey;
use crate::error::{Error, Result};
use crate::ports::Signer;

const PK: &str = "SIGNING_KEY";
const SK: &str = "WRAPPED";
const CONTEXT: (&str, &str) = ("purpose", "m2m-auth JWT signing key");

pub struct WrappedKeySigner {
    kms: aws_sdk_kms::Client,
    wrapped: Vec<u8>,
    public_key: PublicKey,
    /// Decrypted on the first signature.
    key_pair: OnceCell<KeyPair>,
    /// Other keys whose JWTs still verify (the KMS signing key's), published beside this one.
    also_published: Vec<PublicKey>,
}

/// The stored item: the public key and the wrapped private key.
struct Stored {
    public_key: Vec<u8>,
    wrapped: Vec<u8>,
}

impl Stored {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self> {
        let blob = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_b().ok())
                .map(|b| b.as_ref().to_vec())
                .ok_or_else(|| Error::internal(format!("stored signing key lacks {name}")))
        };
        Ok(Self {
            public_key: blob("publicKey")?,
            wrapped: blob("wrappedKey")?,
        })
    }
}

impl WrappedKeySigner {
    /// The table's wrapped key, made (and wrapped with `wrapping_key_id`) if there is none.
    pub async fn load_or_create(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
        kms: aws_sdk_kms::Client,
        wrapping_key_id: &str,
        also_published: Vec<PublicKey>,
    ) -> Result<Self> {
        let stored = match read(dynamodb, table).await? {
            Some(stored) => stored,
            None => create(dynamodb, table, &kms, wrapping_key_id).await?,
        };
        Ok(Self {
            kms,
            public_key: PublicKey::from_spki_der(&stored.public_key)?,
            wrapped: stored.wrapped,
            key_pair: OnceCell::new(),
            also_published,
        })
    }

    async fn key_pair(&self) -> Result<&KeyPair> {
        self.key_pair
            .get_or_try_init(|| async {
                let out = self
                    .kms
                    .decrypt()
                    .ciphertext_blob(Blob::new(self.wrapped.clone()))
                    .encryption_context(CONTEXT.0, CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| super::aws::call_failed(crate::error::Dependency::Kms, e))?;
                let der = out
                    .plaintext
                    .ok_or_else(|| Error::internal("KMS Decrypt returned nothing"))?;
                let key_pair = KeyPair::from_pkcs8(der.as_ref()).map_err(Error::internal)?;
                if public_key_of(&key_pair)?.kid() != self.public_key.kid() {
                    return Err(Error::internal("the wrapped key is not the published one"));
                }
                Ok(key_pair)
            })
            .await
    }
}

async fn read(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Option<Stored>> {
    let out = dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(PK.into()))
        .key("sk", AttributeValue::S(SK.into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| super::aws::call_failed(crate::error::Dependency::DynamoDb, e))?;
    out.item.as_ref().map(Stored::from_item).transpose()
}

/// Makes a key, wraps it and stores it, unless another process stored one first: then that one.
async fn create(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    kms: &aws_sdk_kms::Client,
    wrapping_key_id: &str,
) -> Result<Stored> {
    let (key_pair, pkcs8) = generate_pkcs8()?;
    let public_key = public_key_of(&key_pair)?.spki_der().to_vec();
    let wrapped = kms
        .encrypt()
        .key_id(wrapping_key_id)
        .plaintext(Blob::new(pkcs8))
        .encryption_context(CONTEXT.0, CONTEXT.1)
        .send()
        .await
        .map_err(|e| super::aws::call_failed(crate::error::Dependency::Kms, e))?
        .ciphertext_blob
        .ok_or_else(|| Error::internal("KMS Encrypt returned nothing"))?
        .into_inner();
    let put = dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(PK.into()))
        .item("sk", AttributeValue::S(SK.into()))
        .item(
            "publicKey",
            AttributeValue::B(Blob::new(public_key.clone())),
        )
        .item("wrappedKey", AttributeValue::B(Blob::new(wrapped.clone())))
        .item("wrappingKeyId", AttributeValue::S(wrapping_key_id.into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match put {
        Ok(_) => Ok(Stored {
            public_key,
            wrapped,
        }),
        Err(e) if super::dynamodb::is_condition_failure(&e) => read(dynamodb, table)
            .await?
            .ok_or_else(|| Error::internal("the signing key stored first is gone")),
        Err(e) => Err(super::aws::call_failed(
            crate::error::Dependency::DynamoDb,
            e,
        )),
    }
}

#[async_trait]
impl Signer for WrappedKeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn also_published(&self) -> &[PublicKey] {
        &self.also_published
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        sign_with(self.key_pair().await?, message)
    }
}
