//! An OpenID issuer on 127.0.0.1 for the federation tests: it serves a discovery document and a
//! JWKS, signs workload tokens shaped as GitHub Actions' and Kubernetes' (their documented
//! claims) with RS256 or ES256 keys, can publish a key later, and can hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the issuer: its `kid`, algorithm, private half and JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    /// A new RS256 (2048-bit RSA) or ES256 (P-256) key.
    pub fn new(algorithm: Algorithm) -> Self {
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let (pkcs8, jwk) = match algorithm {
            Algorithm::RS256 => {
                let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
                let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                    "n": b64(&parts.n), "e": b64(&parts.e)});
                (der.as_ref().to_vec(), jwk)
            }
            Algorithm::ES256 => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let signing = &ECDSA_P256_SHA256_FIXED_SIGNING;
                let der = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
                let pair = EcdsaKeyPair::from_pkcs8(signing, der.as_ref()).unwrap();
                // The uncompressed point: 0x04, then x and y.
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                    "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])});
                (der.as_ref().to_vec(), jwk)
            }
            other => panic!("no test key for {other:?}"),
        };
        let pem = pem("PRIVATE KEY", &pkcs8);
        let encoding = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        };
        Self {
            kid,
            algorithm,
            encoding,
            jwk,
        }
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.algorithm, claims)
    }

    /// `claims` signed with this key under another algorithm of its kind (PS256 for an RSA
    /// key published for RS256, say).
    pub fn sign_as(&self, algorithm: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[derive(Default)]
struct Published {
    keys: Mutex<Vec<Value>>,
    hang: AtomicBool,
    /// Discovery documents served, to count fetches.
    fetches: std::sync::atomic::AtomicUsize,
}

/// The issuer, served until dropped.
pub struct Issuer {
    pub url: String,
    pub rs256: Key,
    pub es256: Key,
    published: Arc<Published>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    /// An issuer publishing one RS256 and one ES256 key.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let published = Arc::new(Published::default());
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256"]});
        let routes = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(async move |State(p): State<Arc<Published>>| {
                    p.fetches.fetch_add(1, Ordering::SeqCst);
                    while p.hang.load(Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Json(discovery)
                }),
            )
            .route(
                "/jwks",
                get(async |State(p): State<Arc<Published>>| {
                    Json(json!({"keys": *p.keys.lock().unwrap()}))
                }),
            )
            .with_state(Arc::clone(&published));
        let server = tokio::spawn(async move {
            axum::serve(listener, routes).await.unwrap();
        });
        let issuer = Self {
            url,
            rs256: Key::new(Algorithm::RS256),
            es256: Key::new(Algorithm::ES256),
            published,
            server,
        };
        issuer.publish(&issuer.rs256);
        issuer.publish(&issuer.es256);
        issuer
    }

    /// Adds `key` to the JWKS.
    pub fn publish(&self, key: &Key) {
        self.published.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// Makes the discovery document hang (until told otherwise).
    pub fn hang(&self, hang: bool) {
        self.published.hang.store(hang, Ordering::SeqCst);
    }

    /// How many times the discovery document was asked for.
    pub fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }

    /// The claims of a GitHub Actions OIDC token (as GitHub documents them) of a workflow run
    /// in `repository` on `git_ref`, in `environment` if any, for `audience`.
    pub fn github(
        &self,
        audience: &str,
        repository: &str,
        git_ref: &str,
        environment: Option<&str>,
    ) -> Value {
        let now = now();
        let (owner, _) = repository.split_once('/').unwrap();
        let sub = match environment {
            Some(env) => format!("repo:{repository}:environment:{env}"),
            None => format!("repo:{repository}:ref:{git_ref}"),
        };
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": sub,
            "aud": audience,
            "ref": git_ref,
            "sha": "d6f5cd3a8e6f1b2c3d4e5f60718293a4b5c6d7e8",
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": "65432",
            "repository_id": "123456789",
            "repository_visibility": "private",
            "run_id": "7654321",
            "run_number": "42",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "deploy",
            "workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
            "event_name": "push",
            "ref_type": "branch",
            "job_workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
            "runner_environment": "github-hosted",
            "iss": self.url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 300,
        });
        if let Some(env) = environment {
            claims["environment"] = env.into();
        }
        claims
    }

    /// The claims of a projected Kubernetes service-account token (as the TokenRequest API
    /// issues them) of `service_account` in `namespace`, for `audience`.
    pub fn kubernetes(&self, audience: &str, namespace: &str, service_account: &str) -> Value {
        let now = now();
        json!({
            "aud": [audience],
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "iss": self.url,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": uuid::Uuid::new_v4().to_string()},
                "pod": {"name": format!("{service_account}-7d9f8b6c5-x2v4q"), "uid": uuid::Uuid::new_v4().to_string()},
                "serviceaccount": {"name": service_account, "uid": uuid::Uuid::new_v4().to_string()}
            },
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
        })
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
