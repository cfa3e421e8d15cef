//! Production signer: KMS `Sign` on an RSA_2048 SIGN_VERIFY key; the private key never leaves KMS.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use sha2::{Digest, Sha256};

use crate::domain::PublicKey;
use crate::error::{Error, Result};
use crate::ports::Signer;

/// KMS signs messages of up to 4,096 bytes as RAW; longer ones go as a SHA-256 DIGEST.
const RAW_LIMIT: usize = 4096;

pub struct KmsSigner {
    client: Client,
    key_id: String,
    public_key: PublicKey,
}

fn kms_error<E, R>(e: aws_sdk_kms::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    super::aws::call_failed(crate::error::Dependency::Kms, e)
}

impl KmsSigner {
    /// Fetches the public key once (per cold start) and checks the key can sign RS256.
    pub async fn connect(client: Client, key_id: impl Into<String>) -> Result<Self> {
        let key_id = key_id.into();
        let out = client
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(kms_error)?;
        let rs256 = out
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::RsassaPkcs1V15Sha256);
        if !rs256 {
            return Err(Error::internal(format!(
                "KMS key {key_id} cannot sign RSASSA_PKCS1_V1_5_SHA_256; create it as RSA_2048 SIGN_VERIFY"
            )));
        }
        let der = out
            .public_key
            .ok_or_else(|| Error::internal("KMS GetPublicKey returned no key"))?;
        Ok(Self {
            public_key: PublicKey::from_spki_der(der.as_ref())?,
            client,
            key_id,
        })
    }
}

#[async_trait]
impl Signer for KmsSigner {
    /// The key is still there, enabled, for this function (`kms:GetPublicKey`, which every
    /// function may call; a disabled or deleted key is refused).
    async fn check(&self) -> Result<()> {
        let asked = self.client.get_public_key().key_id(&self.key_id);
        asked.send().await.map(drop).map_err(kms_error)
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let (message, message_type) = if message.len() <= RAW_LIMIT {
            (message.to_vec(), MessageType::Raw)
        } else {
            (Sha256::digest(message).to_vec(), MessageType::Digest)
        };
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(kms_error)?;
        out.signature
            .map(Blob::into_inner)
            .ok_or_else(|| Error::internal("KMS Sign returned no signature"))
    }
}
