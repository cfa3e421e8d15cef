//! Logs never carry a secret, a hash or a token: a Lambda function run as Lambda runs it (the
//! real binary, polling a stand-in of the Runtime API on loopback) at `RUST_LOG=trace`
//! exchanges real credentials, and its whole output is searched for them.

use serde_json::{Value, json};

use crate::support::{Backend, Backing, moto_endpoint, runtime_api, spawn_app};

/// Runs the exchange binary for one invocation of `event`; its answer and its whole output.
async fn invoke_exchange(backend: &Backend, event: String) -> (Value, String) {
    let Backend::Aws {
        table, kms_key_id, ..
    } = backend
    else {
        panic!("the functions run on AWS");
    };
    let env = [
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("M2M_TABLE", table.clone()),
        ("M2M_KMS_KEY_ID", kms_key_id.clone()),
        ("RUST_LOG", "trace".into()),
    ];
    let mut run = runtime_api::invoke("exchange", &env, vec![event]).await;
    let answer = run
        .answers
        .pop()
        .expect("the function answered within 30 s");
    (answer, run.log)
}

#[tokio::test]
async fn a_lambda_function_at_trace_logs_no_secret_hash_or_token() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let stored = t
        .store
        .token(&m2m_shared::domain::ClientId::parse(&client_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/events/exchange-v1.json"
    );
    let event = std::fs::read_to_string(path)
        .unwrap()
        .replace("{{CLIENT_ID}}", &client_id)
        .replace("{{SECRET}}", &secret);

    let (answer, log) = invoke_exchange(&t.app.settings().backend, event).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let jwt = body["accessToken"].as_str().unwrap();
    let refresh_token = body["refreshToken"].as_str().unwrap();
    assert!(
        log.contains("finished processing request"),
        "the request is logged, at info:\n{log}"
    );
    // Every line of the request names it by API Gateway's id, as its answer does.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("processing request"))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    for line in lines {
        assert!(line.contains(r#""request_id":"QxR76gHoAMEJ2w=""#), "{line}");
    }
    let headers = &answer["headers"];
    assert_eq!(headers["x-request-id"], "QxR76gHoAMEJ2w=", "{answer}");
    let hash = stored.secret.hash.as_stored();
    let signature = jwt.rsplit('.').next().unwrap();
    for (what, text) in [
        ("the secret", secret.as_str()),
        ("the secret's hash", hash),
        ("the JWT's signature", signature),
        ("the refresh token", refresh_token),
        (
            "the vendor token's signature",
            vendor.rsplit('.').next().unwrap(),
        ),
    ] {
        assert!(!log.contains(text), "{what} is in the log:\n{log}");
    }
}
