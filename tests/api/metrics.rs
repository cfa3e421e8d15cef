//! Metrics as an operator reads them: `m2m-local`'s `/metrics` scraped and parsed in
//! Prometheus' text format after a flow, and a Lambda function's Embedded Metric Format lines
//! read as CloudWatch reads them.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::local_server::{Server, banner_value, exchange_and_refresh_both_kinds};
use crate::support::{Backing, EXCHANGE_V1, REFRESH_V2, runtime_api, spawn_app};

/// Prometheus' text format as a scraper reads it: every sample, `name{labels}` to its value
/// (labels in the order written); `# HELP` and `# TYPE` lines must name known types.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.rsplit(' ').next().unwrap();
            assert!(
                ["counter", "histogram", "gauge", "summary"].contains(&kind),
                "{line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// A vendor login, a personal and a tenant token each exchanged and refreshed, a wrong secret,
/// a spent refresh token presented again and a forged one.
async fn flow(server: &Server) {
    let client_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let vendor = server.vendor_token(&client_id, &secret).await;
    let mut handled = Vec::new();
    let client_ids = exchange_and_refresh_both_kinds(server, &vendor, &mut handled).await;
    let wrong = json!({"clientId": client_ids[1], "secret": format!("m2mt_{}", "x".repeat(49))});
    let (status, _) = server.call("POST", EXCHANGE_V1, &[], Some(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The personal token's first refresh token, spent already; then a forged one.
    for refresh in [handled[2].as_str(), "m2mr_forged"] {
        let body = json!({"refreshToken": refresh});
        let (status, _) = server.call("POST", REFRESH_V2, &[], Some(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// After a flow (a vendor login, two tokens exchanged and refreshed, a wrong secret, a refresh
/// token replayed), `/metrics` on its own listener counts each, by kind, endpoint, reason and
/// outcome, and holds the histograms of requests, bcrypt checks and signatures.
#[tokio::test]
async fn the_local_server_serves_prometheus_metrics_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        ("M2M_DATA_DIR", dir.path().display().to_string()),
        ("M2M_METRICS_LISTEN", "127.0.0.1:0".into()),
    ]);
    let scrape_url = server
        .banner
        .iter()
        .find_map(|line| line.strip_prefix("metrics at "))
        .expect("the metrics address is printed")
        .to_owned();
    flow(&server).await;
    let on_the_api = reqwest::get(format!("{}/metrics", server.base)).await;
    assert_eq!(on_the_api.unwrap().status(), StatusCode::NOT_FOUND);

    let response = reqwest::get(&scrape_url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let samples = samples(&text);
    let at = |series: &str| {
        samples
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    let issued = |kind: &str, endpoint: &str| {
        at(&format!(
            r#"m2m_jwts_issued_total{{kind="{kind}",endpoint="{endpoint}"}}"#
        ))
    };
    assert_eq!(issued("vendor", "vendorAuth"), 1.0);
    for kind in ["tenantApiToken", "userApiToken"] {
        assert_eq!(
            (issued(kind, "exchange"), issued(kind, "refresh")),
            (1.0, 1.0)
        );
    }
    for (series, expected) in [
        (r#"m2m_refusals_total{reason="credentials"}"#, 1.0),
        (r#"m2m_refreshes_total{outcome="renewed"}"#, 2.0),
        (r#"m2m_refreshes_total{outcome="replayed"}"#, 1.0),
        (r#"m2m_refreshes_total{outcome="refused"}"#, 1.0),
        (r#"m2m_request_seconds_count{endpoint="exchange"}"#, 3.0),
        (r#"m2m_request_seconds_count{endpoint="refresh"}"#, 4.0),
    ] {
        assert_eq!(at(series), expected, "{series}");
    }
    // A bcrypt check per exchange and login (a wrong secret's quick check spares it one); a
    // signature per JWT.
    assert!(at("m2m_bcrypt_seconds_count") >= 3.0, "{text}");
    assert!(at("m2m_signing_seconds_count") >= 5.0, "{text}");
    let buckets = samples
        .keys()
        .filter(|s| s.starts_with(r#"m2m_request_seconds_bucket{endpoint="exchange""#))
        .count();
    assert!(buckets > 10, "histograms with buckets:\n{text}");
    assert!(
        text.contains("# TYPE m2m_request_seconds histogram"),
        "{text}"
    );
}

/// One metric value as CloudWatch takes it from an Embedded Metric Format document.
#[derive(Debug)]
struct Datum {
    namespace: String,
    name: String,
    unit: Option<String>,
    dimensions: BTreeMap<String, String>,
    values: Vec<f64>,
}

/// The EMF documents in a function's output, checked against the specification as CloudWatch
/// Logs applies it (a timestamp in ms; each dimension and metric named in the directive is a
/// member of the document, a string or a number or up to 100 numbers), as data.
fn embedded_metrics(log: &str) -> Vec<Datum> {
    let mut data = Vec::new();
    for line in log.lines().filter(|l| l.starts_with(r#"{"_aws""#)) {
        let document: Value = serde_json::from_str(line).unwrap();
        let aws = &document["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some(), "{line}");
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            let namespace = directive["Namespace"].as_str().unwrap();
            assert!(!namespace.is_empty() && namespace.len() <= 1024, "{line}");
            let sets = directive["Dimensions"].as_array().unwrap();
            for set in sets {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30, "{line}");
                let dimensions: BTreeMap<String, String> = set
                    .iter()
                    .map(|name| {
                        let name = name.as_str().unwrap();
                        let value = document[name]
                            .as_str()
                            .unwrap_or_else(|| panic!("{name}: {line}"));
                        (name.to_owned(), value.to_owned())
                    })
                    .collect();
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap();
                    let values = match &document[name] {
                        Value::Number(n) => vec![n.as_f64().unwrap()],
                        Value::Array(values) => {
                            values.iter().map(|v| v.as_f64().unwrap()).collect()
                        }
                        other => panic!("{name} is {other}: {line}"),
                    };
                    assert!(!values.is_empty() && values.len() <= 100, "{line}");
                    data.push(Datum {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        unit: metric["Unit"].as_str().map(str::to_owned),
                        dimensions: dimensions.clone(),
                        values,
                    });
                }
            }
        }
    }
    data
}

/// The values of metric `name` with exactly `dimensions`, over every document.
fn values(data: &[Datum], name: &str, dimensions: &[(&str, &str)]) -> Vec<f64> {
    let wanted: BTreeMap<String, String> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    data.iter()
        .filter(|d| d.name == name && d.dimensions == wanted)
        .flat_map(|d| d.values.clone())
        .collect()
}

/// The exchange function, run as Lambda runs it, writes after each invocation the metrics of
/// what it did, in the namespace it was given: the JWT, the refusal, the request's and bcrypt's
/// and the signature's times; with KMS unreachable, its 503 names the dependency.
#[tokio::test]
async fn a_lambda_function_writes_embedded_metrics_cloudwatch_reads() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let exchange = |secret: &str| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/events/exchange-v1.json"
        );
        std::fs::read_to_string(path)
            .unwrap()
            .replace("{{CLIENT_ID}}", &client_id)
            .replace("{{SECRET}}", secret)
    };
    let wrong = format!("m2mt_{}", "x".repeat(49));
    let mut env = crate::gateway_events::function_env(&t);
    env.push(("M2M_METRICS_NAMESPACE", "m2m-auth/test".into()));
    let run =
        runtime_api::invoke("exchange", &env, vec![exchange(&secret), exchange(&wrong)]).await;
    let statuses: Vec<&Value> = run.answers.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(statuses, [&json!(200), &json!(401)], "{}", run.log);
    let data = embedded_metrics(&run.log);
    assert!(
        data.iter().all(|d| d.namespace == "m2m-auth/test"),
        "{data:?}"
    );
    let issued = [("kind", "tenantApiToken"), ("endpoint", "exchange")];
    assert_eq!(
        values(&data, "m2m_jwts_issued_total", &issued),
        [1.0],
        "{}",
        run.log
    );
    let refused = [("reason", "credentials")];
    assert_eq!(
        values(&data, "m2m_refusals_total", &refused),
        [1.0],
        "{}",
        run.log
    );
    let times = values(&data, "m2m_request_seconds", &[("endpoint", "exchange")]);
    assert_eq!(times.len(), 2, "one per request: {}", run.log);
    assert!(times.iter().all(|s| *s > 0.0 && *s < 8.0), "{times:?}");
    let bcrypt = data
        .iter()
        .find(|d| d.name == "m2m_bcrypt_seconds")
        .expect("bcrypt timed");
    assert_eq!(bcrypt.unit.as_deref(), Some("Seconds"));
    assert!(
        !values(&data, "m2m_signing_seconds", &[]).is_empty(),
        "{}",
        run.log
    );
}

/// With KMS (and DynamoDB) unreachable, the exchange function's 503 is counted under the
/// dependency that failed.
#[tokio::test]
async fn a_lambda_functions_503_names_the_dependency_in_its_metrics() {
    let t = spawn_app(Backing::Moto).await;
    let mut env = crate::gateway_events::function_env(&t);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    env[0] = ("AWS_ENDPOINT_URL", endpoint);
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/events/exchange-v1.json"
    ))
    .unwrap();
    let run = runtime_api::invoke("exchange", &env, vec![event]).await;
    assert_eq!(run.answers.len(), 1, "{}", run.log);
    assert_eq!(run.answers[0]["statusCode"], 503, "{}", run.log);
    let data = embedded_metrics(&run.log);
    let kms = values(&data, "m2m_unavailable_total", &[("dependency", "kms")]);
    assert_eq!(kms, [1.0], "{}", run.log);
}
