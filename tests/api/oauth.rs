//! `POST /oauth/token`: the OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), as a
//! standard client speaks it, with Authlib as the real client.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::support::client::Issued;
use crate::support::*;

const TOKEN: &str = "/oauth/token";

/// What the endpoint answered: status, headers and JSON body.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// Posts `form` (already encoded) to the token endpoint, with HTTP Basic if `basic` is set.
async fn token_request(t: &TestApp, form: &str, basic: Option<(&str, &str)>) -> Answer {
    let mut request = t
        .http
        .post(format!("{}{TOKEN}", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some((id, secret)) = basic {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        request = request.header("authorization", format!("Basic {pair}"));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer {
        status,
        headers,
        body: response.json().await.unwrap(),
    }
}

fn post_form(token: &Issued, extra: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}{extra}",
        token.client_id, token.secret
    )
}

async fn reports_token(t: &TestApp) -> Issued {
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.permission("p-write", "reports.write").await;
    let body = json!({"permissionIds": ["p-read", "p-write"], "metadata": {"env": "ci"}});
    vendor.tenant("acme").token(body).await
}

async fn both_client_authentications_get_the_exchanges_jwt_and_no_refresh_token(t: &TestApp) {
    let bot = reports_token(t).await;
    let basic = token_request(
        t,
        "grant_type=client_credentials",
        Some((&bot.client_id, &bot.secret)),
    )
    .await;
    let post = token_request(t, &post_form(&bot, ""), None).await;
    let exchanged = t.claims_of(&bot).await;
    for answer in [basic, post] {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 600);
        assert!(answer.body.get("refresh_token").is_none(), "section 4.4.3");
        assert_eq!(answer.headers[CACHE_CONTROL], "no-store");
        let jwt = answer.body["access_token"].as_str().unwrap();
        let claims =
            serde_json::to_value(t.app.credentials(ISSUER).verify_access_token(jwt).unwrap());
        let mut claims = claims.unwrap();
        for varying in ["iat", "exp", "jti"] {
            claims[varying] = exchanged[varying].clone();
        }
        assert_eq!(claims, exchanged, "the same JWT as the exchange");
    }
}
on_both_stores!(both_client_authentications_get_the_exchanges_jwt_and_no_refresh_token);

#[tokio::test]
async fn a_refused_client_gets_invalid_client_with_a_basic_challenge_either_way() {
    let t = spawn_app(Backing::Embedded).await;
    let bot = t.as_vendor().await.tenant("acme").token(json!({})).await;
    let wrong = Issued {
        client_id: bot.client_id.clone(),
        secret: m2m_shared::domain::Secret::generate(m2m_shared::domain::SecretKind::TenantToken)
            .expose()
            .to_owned(),
    };
    let unknown = Issued {
        client_id: "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11".into(),
        secret: bot.secret.clone(),
    };
    let mut bodies = Vec::new();
    for token in [&wrong, &unknown] {
        let basic = Some((token.client_id.as_str(), token.secret.as_str()));
        for answer in [
            token_request(&t, "grant_type=client_credentials", basic).await,
            token_request(&t, &post_form(token, ""), None).await,
        ] {
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
            assert!(
                answer.headers[WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic")
            );
            bodies.push(answer.body);
        }
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "nothing tells the causes apart"
    );
    assert_eq!(bodies[0]["error"], "invalid_client");
    let none = token_request(&t, "grant_type=client_credentials", None).await;
    assert_eq!(
        (none.status, &none.body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );
}

#[tokio::test]
async fn malformed_requests_get_the_rfcs_error_codes() {
    let t = spawn_app(Backing::Embedded).await;
    let bot = t.as_vendor().await.tenant("acme").token(json!({})).await;
    let basic = Some((bot.client_id.as_str(), bot.secret.as_str()));
    let cases = [
        (token_request(&t, "", basic).await, "invalid_request"),
        (
            token_request(&t, "grant_type=password&username=a&password=b", basic).await,
            "unsupported_grant_type",
        ),
        (
            token_request(&t, &post_form(&bot, ""), basic).await,
            "invalid_request",
        ),
        (
            token_request(
                &t,
                "grant_type=client_credentials&grant_type=client_credentials",
                basic,
            )
            .await,
            "invalid_request",
        ),
        (
            token_request(&t, "grant_type=client_credentials&scope=not.held", basic).await,
            "invalid_scope",
        ),
        (
            // Basic credentials of one client, the form naming another.
            token_request(
                &t,
                "grant_type=client_credentials&client_id=0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
                basic,
            )
            .await,
            "invalid_request",
        ),
    ];
    for (answer, error) in cases {
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{:?}",
            answer.body
        );
        assert!(answer.body["error_description"].is_string());
    }
    let json = t
        .post(TOKEN, &[], &json!({"grant_type": "client_credentials"}))
        .await;
    assert_eq!(
        (json.status, json.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

async fn a_scope_narrows_the_jwts_permissions(t: &TestApp) {
    let bot = reports_token(t).await;
    let answer = token_request(t, &post_form(&bot, "&scope=reports.read"), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["scope"], "reports.read");
    let jwt = answer.body["access_token"].as_str().unwrap();
    let claims = t.app.credentials(ISSUER).verify_access_token(jwt).unwrap();
    assert_eq!(claims.permissions, ["reports.read"]);
    let unscoped = t.claims_of(&bot).await;
    assert_eq!(
        unscoped["permissions"],
        json!(["reports.read", "reports.write"]),
        "the exchange is unchanged"
    );
}
on_both_stores!(a_scope_narrows_the_jwts_permissions);

/// Authlib's `OAuth2Session.fetch_token`, with Basic and with form authentication.
#[tokio::test]
async fn authlib_fetches_a_token_with_either_client_authentication() {
    let t = spawn_app(Backing::Embedded).await;
    let bot = reports_token(&t).await;
    let endpoint = format!("{}{TOKEN}", t.base);
    for (method, scope) in [
        ("client_secret_basic", None),
        ("client_secret_post", Some("reports.write")),
    ] {
        let mut args = vec![
            endpoint.clone(),
            bot.client_id.clone(),
            bot.secret.clone(),
            method.to_owned(),
        ];
        args.extend(scope.map(str::to_owned));
        let output = python("authlib_client_credentials.py", args).await;
        assert!(
            output.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token: Value = serde_json::from_slice(&output.stdout).unwrap();
        let claims = t
            .app
            .credentials(ISSUER)
            .verify_access_token(token["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims.sub, bot.client_id, "{method}");
        let expected = scope.map_or(vec!["reports.read", "reports.write"], |s| vec![s]);
        assert_eq!(claims.permissions, expected, "{method}");
    }
    let wrong = vec![
        endpoint,
        bot.client_id.clone(),
        "m2mt_wrong".into(),
        "client_secret_basic".into(),
    ];
    let refused = python("authlib_client_credentials.py", wrong).await;
    assert_eq!(refused.status.code(), Some(3));
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"], "invalid_client");
}

/// Runs one of `tests/clients/`'s Python scripts with the suite's interpreter.
async fn python(script: &str, args: Vec<String>) -> std::process::Output {
    let python = std::env::var("M2M_TEST_PYTHON")
        .expect("M2M_TEST_PYTHON is not set: run the suite with scripts/test.sh");
    run_client(&python, script, args).await
}

/// The `oauth2` crate's client-credentials request, which authenticates with HTTP Basic.
#[tokio::test]
async fn the_oauth2_crate_gets_a_narrowed_token_with_basic_authentication() {
    use oauth2::basic::{BasicClient, BasicErrorResponseType};
    use oauth2::{ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
    let t = spawn_app(Backing::Embedded).await;
    let bot = reports_token(&t).await;
    let endpoint = TokenUrl::new(format!("{}{TOKEN}", t.base)).unwrap();
    let client = |secret: &str| {
        BasicClient::new(ClientId::new(bot.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_token_uri(endpoint.clone())
    };

    let token = client(&bot.secret)
        .exchange_client_credentials()
        .add_scope(Scope::new("reports.read".into()))
        .request_async(&send)
        .await
        .unwrap();
    let claims = t
        .app
        .credentials(ISSUER)
        .verify_access_token(token.access_token().secret())
        .unwrap();
    assert_eq!(claims.sub, bot.client_id);
    assert_eq!(claims.permissions, ["reports.read"]);
    assert_eq!(
        token.expires_in(),
        Some(std::time::Duration::from_secs(600))
    );

    let refused = client("m2mt_wrong")
        .exchange_client_credentials()
        .request_async(&send)
        .await;
    match refused {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), BasicErrorResponseType::InvalidClient);
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

/// The `oauth2` crate's requests, sent with the suite's reqwest.
async fn send(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = reqwest::Client::new()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = axum::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    Ok(answer
        .body(response.bytes().await?.to_vec())
        .expect("a valid response"))
}

/// Over the token's rate limit: 429 with `Retry-After`, in OAuth's error shape, which OAuth
/// clients parse.
async fn the_rate_limit_is_told_in_oauths_shape(backing: Backing) {
    let t = spawn_app_with(backing, |s| s.token_rate_limit_per_minute = 1).await;
    let vendor = t.vendor_token().await;
    let (id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    t.clock.to_next_minute();
    let granted = token_request(&t, &form, None).await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);
    let refused = token_request(&t, &form, None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(
        refused.body,
        json!({
            "error": "temporarily_unavailable",
            "error_description": format!("Too many requests for this token; try again in {wait} s"),
        })
    );
}

#[tokio::test]
async fn the_rate_limit_is_told_in_oauths_shape_on_the_embedded_store() {
    the_rate_limit_is_told_in_oauths_shape(Backing::Embedded).await;
}

#[tokio::test]
async fn the_rate_limit_is_told_in_oauths_shape_on_dynamodb() {
    the_rate_limit_is_told_in_oauths_shape(Backing::Moto).await;
}

/// DynamoDB refusing: 503 with `Retry-After`, in OAuth's error shape.
#[tokio::test]
async fn a_failing_dependency_is_told_in_oauths_shape() {
    use crate::support::fault_proxy::Fault;
    use m2m_shared::config::DEFAULT_REQUEST_BUDGET_SECONDS;

    let faulty = spawn_app_behind_fault_proxies(DEFAULT_REQUEST_BUDGET_SECONDS).await;
    let t = &faulty.api;
    let vendor = t.vendor_token().await;
    let (id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    faulty.dynamodb.set(Fault::Refuse);
    let refused = token_request(t, "grant_type=client_credentials", Some((&id, &secret))).await;
    faulty.dynamodb.set(Fault::Forward);
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers["retry-after"], "2");
    assert_eq!(
        refused.body,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "Service temporarily unavailable; try again shortly",
        })
    );
}
