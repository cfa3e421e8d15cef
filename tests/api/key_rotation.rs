//! Signing-key rotation as an operator runs it: `m2m-admin rotate-key` and `retire-key` on the
//! local key with `m2m-local` restarted between, and `PreviousSigningKeyArn` on KMS (moto).
//! During a rotation both keys are published, new JWTs carry the new `kid`, and JWTs and
//! refresh tokens from before verify and refresh until the previous key is retired.

use m2m_verify::{DiscoveryOptions, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::local_server::{Server, banner_value, run};
use crate::support::*;

/// The JWTs' `iss`, fixed so that it survives the restarts (each gets a new port).
const ROTATION_ISSUER: &str = "https://auth.rotation.test";

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    let keys = jwks["keys"].as_array().unwrap();
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// What a vendor's API, PyJWT and Frontegg's Node SDK make of `jwts` against `server`.
async fn verified_by_all(server: &Server, vendor: (&str, &str), jwts: &[(&str, &str)]) -> Value {
    let options = DiscoveryOptions::default().allow_issuer(ROTATION_ISSUER);
    let verifier = Verifier::discover_with(&server.base, "m2m-api", options)
        .await
        .unwrap();
    let python = std::env::var("M2M_TEST_PYTHON").expect("M2M_TEST_PYTHON (scripts/test.sh)");
    let mut seen = json!({});
    for (name, jwt) in jwts {
        let args = [&server.base, *jwt, "m2m-api", ROTATION_ISSUER].map(str::to_owned);
        let pyjwt = run_client(&python, "pyjwt_verify.py", args.to_vec()).await;
        seen[name] = json!({
            "m2m-verify": verifier.verify(jwt).await.is_ok(),
            "pyjwt": pyjwt.status.success(),
        });
    }
    let cases: Vec<Value> = jwts
        .iter()
        .map(|(n, t)| json!({"name": n, "token": t}))
        .collect();
    let node = frontegg_client("node", "node/check.js", &server.base, vendor, &json!(cases)).await;
    for (name, _) in jwts {
        seen[name]["frontegg-node"] = node[name]["ok"].clone();
    }
    seen
}

/// An exchange's JWT and refresh token.
async fn exchange(server: &Server, credentials: &Value) -> (String, String) {
    let body = Some(credentials.clone());
    let (status, issued) = server.call("POST", EXCHANGE_V1, &[], body).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let text = |field: &str| issued[field].as_str().unwrap().to_owned();
    (text("accessToken"), text("refreshToken"))
}

/// The `kid`s of the JWKS and the PEMs of `configurations/v1`, as `vendor` reads them.
async fn published(server: &Server, (client_id, secret): (&str, &str)) -> (Vec<String>, Value) {
    let (_, jwks) = server.call("GET", JWKS, &[], None).await;
    let vendor = server.vendor_token(client_id, secret).await;
    let auth = [("x-access-token", vendor.as_str())];
    let (_, configuration) = server.call("GET", CONFIGURATIONS, &auth, None).await;
    (kids(&jwks), configuration)
}

#[tokio::test]
async fn the_local_key_rotates_without_breaking_a_jwt_or_refresh_token_already_out() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("M2M_DATA_DIR", dir.path().display().to_string()),
        ("M2M_ISSUER", ROTATION_ISSUER.to_owned()),
    ];
    let server = Server::start(&envs);
    let client_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let vendor = (client_id.as_str(), secret.as_str());
    let created = server
        .tenant_token(&server.vendor_token(&client_id, &secret).await)
        .await;
    let credentials = json!({"clientId": created["clientId"], "secret": created["secret"]});
    let (old_jwt, old_refresh) = exchange(&server, &credentials).await;
    let old_kid = kid(&old_jwt);
    assert_eq!(published(&server, vendor).await.0, [old_kid.as_str()]);
    drop(server);

    let admin = crate::support::binary("m2m-admin");
    let (ok, told, _) = run(admin, &["rotate-key"], &envs);
    assert!(ok && told.contains("retire-key"), "{told}");
    let server = Server::start(&envs);
    let (new_jwt, _) = exchange(&server, &credentials).await;
    let new_kid = kid(&new_jwt);
    assert_ne!(new_kid, old_kid, "new JWTs carry the new key's kid");
    let (kids, configuration) = published(&server, vendor).await;
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    let pems = configuration["publicKeys"].as_array().unwrap();
    assert_eq!(pems.len(), 2);
    assert_eq!(
        pems[0], configuration["publicKey"],
        "Frontegg's SDKs get the new key"
    );
    let jwts = [("old", old_jwt.as_str()), ("new", new_jwt.as_str())];
    let seen = verified_by_all(&server, vendor, &jwts).await;
    for verifier in ["m2m-verify", "pyjwt"] {
        assert_eq!(seen["old"][verifier], true, "{verifier}: {seen}");
        assert_eq!(seen["new"][verifier], true, "{verifier}: {seen}");
    }
    // Frontegg's SDKs hold one key per process (configurations/v1 `publicKey`): one started
    // now verifies the new JWTs; one started before the rotation still holds the old key.
    assert_eq!(seen["new"]["frontegg-node"], true, "{seen}");
    let refresh = Some(json!({"refreshToken": old_refresh}));
    let (status, refreshed) = server.call("POST", REFRESH_V2, &[], refresh).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refresh token from before: {refreshed}"
    );
    assert_eq!(kid(refreshed["access_token"].as_str().unwrap()), new_kid);
    drop(server);

    let (ok, told, _) = run(admin, &["retire-key"], &envs);
    assert!(ok, "{told}");
    let server = Server::start(&envs);
    assert_eq!(published(&server, vendor).await.0, [new_kid.as_str()]);
    let seen = verified_by_all(&server, vendor, &jwts).await;
    let refused = json!({"m2m-verify": false, "pyjwt": false, "frontegg-node": false});
    assert_eq!(seen["old"], refused);
    assert_eq!(seen["new"]["m2m-verify"], true, "{seen}");
    let (ok, told, _) = run(admin, &["retire-key"], &envs);
    assert!(ok && told.contains("No rotation"), "{told}");
}

/// KMS: with `M2M_PREVIOUS_KMS_KEY_ID` (the template's `PreviousSigningKeyArn`), the previous
/// key is published beside the new one and signs nothing new; its JWTs still verify.
#[tokio::test]
async fn a_kms_key_rotates_with_the_previous_key_still_published() {
    let (table, old_key) = moto_resources().await;
    let (_, new_key) = moto_resources().await;
    let backend = |kms_key_id: &str, previous: Option<&str>| Backend::Aws {
        table: table.clone(),
        kms_key_id: kms_key_id.to_owned(),
        wrapping_key_id: None,
        previous_kms_key_id: previous.map(str::to_owned),
    };
    let before = app_on(backend(&old_key, None)).await;
    let vendor = before.vendors().create("tests".into()).await.unwrap();
    let (client_id, secret) = (vendor.record.client_id.to_string(), vendor.secret);
    let vendor_jwt = async |app: &m2m_shared::App| {
        let vendors = app.vendors();
        vendors
            .authenticate(&client_id, secret.expose(), ISSUER)
            .await
            .unwrap()
            .0
    };
    let old_jwt = vendor_jwt(&before).await;

    let during = app_on(backend(&new_key, Some(&old_key))).await;
    let kids_of = |app: &m2m_shared::App| -> Vec<String> {
        app.published_keys()
            .iter()
            .map(|k| k.kid().to_owned())
            .collect()
    };
    let new_jwt = vendor_jwt(&during).await;
    assert_ne!(kid(&new_jwt), kid(&old_jwt));
    assert_eq!(kids_of(&during), [kid(&new_jwt), kid(&old_jwt)]);
    for jwt in [&old_jwt, &new_jwt] {
        during.vendors().verify_token(jwt, ISSUER).await.unwrap();
    }
    let after = app_on(backend(&new_key, None)).await;
    assert_eq!(kids_of(&after), [kid(&new_jwt)]);
    assert!(
        after
            .vendors()
            .verify_token(&old_jwt, ISSUER)
            .await
            .is_err(),
        "retired"
    );
}
