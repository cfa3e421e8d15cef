//! The second signing mode (`M2M_WRAPPING_KEY_ID`, the template's `SigningMode: wrapped`), on
//! moto: a key made by the service, stored only wrapped under a symmetric KMS key, decrypted
//! once per process and used in memory; published beside the KMS key, whose JWTs still verify.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Backend, EXCHANGE_V1, ISSUER, JWKS, Signing, app_on, aws_config, moto_resources,
    moto_wrapping_key, spawn_patient_app_behind_proxies,
};
use m2m_shared::adapters::{KmsSigner, WrappedKeySigner};
use m2m_shared::ports::Signer;

/// The claims of `jwt` if the JWKS key its `kid` names verifies it.
fn verified_by(jwks: &Value, jwt: &str) -> Value {
    let kid = jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("{kid} is not published: {jwks}"));
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

#[tokio::test]
async fn a_wrapped_key_signs_in_memory_and_is_published_beside_the_kms_key() {
    let f = spawn_patient_app_behind_proxies(Signing::WrappedKey).await;
    let t = &f.api;
    let vendor = t.vendor_token().await;
    let start_up = f.kms.take_calls();
    assert_eq!(
        start_up.iter().filter(|c| *c == "Decrypt").count(),
        1,
        "decrypted once, for the first signature: {start_up:?}"
    );
    assert!(!start_up.contains(&"Sign".to_owned()), "{start_up:?}");
    let (client, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let mut jwts = Vec::new();
    for _ in 0..5 {
        let reply = t.exchange(EXCHANGE_V1, &client, &secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        jwts.push(reply.body["accessToken"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        f.kms.take_calls(),
        Vec::<String>::new(),
        "no KMS call per JWT"
    );

    let jwks = t.get(JWKS, &[]).await.body;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "the wrapped key, then the KMS key: {jwks}");
    assert_eq!(kids[0], t.app.public_key().kid());
    for jwt in &jwts {
        assert_eq!(kid_of(jwt), kids[0]);
        assert_eq!(verified_by(&jwks, jwt)["sub"], client.as_str());
        t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    }
}

#[tokio::test]
async fn processes_starting_at_once_share_one_key_stored_only_wrapped() {
    let (table, _) = moto_resources().await;
    let wrapping = moto_wrapping_key().await;
    let config = aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let kms = aws_sdk_kms::Client::new(&config);
    let start =
        || WrappedKeySigner::load_or_create(&dynamodb, &table, kms.clone(), &wrapping, vec![]);
    let started = futures::future::join_all((0..4).map(|_| start())).await;
    let kids: Vec<String> = started
        .iter()
        .map(|signer| signer.as_ref().unwrap().public_key().kid().to_owned())
        .collect();
    assert!(kids.iter().all(|kid| *kid == kids[0]), "one key: {kids:?}");
    let signature = started[3].as_ref().unwrap().sign(b"message").await.unwrap();
    assert_eq!(signature.len(), 256, "RSA-2048");

    // What the table holds: the public key, and a private key only KMS can open, for this
    // purpose alone.
    let item = dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("SIGNING_KEY".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("WRAPPED".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["pk", "publicKey", "sk", "wrappedKey", "wrappingKeyId"]
    );
    let wrapped = item["wrappedKey"].as_b().unwrap().clone();
    assert!(aws_lc_rs::rsa::KeyPair::from_pkcs8(wrapped.as_ref()).is_err());
    let without_context = kms.decrypt().ciphertext_blob(wrapped).send().await;
    assert!(without_context.is_err(), "bound to its purpose");
}

#[tokio::test]
async fn jwts_of_the_kms_key_still_verify_after_switching_to_a_wrapped_key() {
    let (table, kms_key_id) = moto_resources().await;
    let backend = |wrapping_key_id| Backend::Aws {
        table: table.clone(),
        kms_key_id: kms_key_id.clone(),
        wrapping_key_id,
        previous_kms_key_id: None,
    };
    let before = app_on(backend(None)).await;
    let vendor = before.vendors().create("tests".into()).await.unwrap();
    let secret = vendor.secret.expose().to_owned();
    let client_id = vendor.record.client_id.to_string();
    let (old_jwt, _) = before
        .vendors()
        .authenticate(&client_id, &secret, ISSUER)
        .await
        .unwrap();

    let after = app_on(backend(Some(moto_wrapping_key().await))).await;
    assert_ne!(after.public_key().kid(), before.public_key().kid());
    let kms_kid = KmsSigner::connect(aws_sdk_kms::Client::new(&aws_config().await), &kms_key_id)
        .await
        .unwrap()
        .public_key()
        .kid()
        .to_owned();
    let published: Vec<&str> = after.published_keys().iter().map(|k| k.kid()).collect();
    assert_eq!(published, [after.public_key().kid(), kms_kid.as_str()]);
    assert_eq!(kid_of(&old_jwt), kms_kid);
    let claims = after
        .vendors()
        .verify_token(&old_jwt, ISSUER)
        .await
        .unwrap();
    assert_eq!(
        claims.vendor_id, client_id,
        "a vendor token from before the switch"
    );
    let (new_jwt, _) = after
        .vendors()
        .authenticate(&client_id, &secret, ISSUER)
        .await
        .unwrap();
    assert_eq!(kid_of(&new_jwt), after.public_key().kid());
}
