//! Micro-benchmarks of an exchange's own work, apart from bcrypt and the store: parsing the
//! presented secret and refresh token, building the claims into a JWT's signing input, and
//! signing it with the local key. `cargo bench -p m2m-shared`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use m2m_shared::adapters::LocalKeySigner;
use m2m_shared::domain::jwt::{self, AccessClaims, TokenType};
use m2m_shared::domain::{ClientId, RefreshKey, RefreshToken, Secret, SecretKind, Timestamp};
use m2m_shared::ports::Signer;

fn claims() -> AccessClaims {
    AccessClaims {
        sub: ClientId::generate().to_string(),
        tenant_id: "acme".into(),
        roles: (0..5).map(|n| format!("role-{n}")).collect(),
        permissions: (0..20).map(|n| format!("reports.read.{n}")).collect(),
        metadata: serde_json::from_str(r#"{"team": "platform", "tier": "gold"}"#).unwrap(),
        created_by_user_id: None,
        token_type: TokenType::TenantApiToken,
        application_id: "m2m-default-app".into(),
        user_id: None,
        email: None,
        user_metadata: None,
        iss: "https://auth.example.com".into(),
        aud: "m2m-api".into(),
        iat: 1_800_000_000,
        exp: 1_800_003_600,
        jti: "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11".into(),
    }
}

fn parsing(c: &mut Criterion) {
    let secret = Secret::generate(SecretKind::TenantToken);
    let text = secret.expose().to_owned();
    c.bench_function("parse a secret (prefix, alphabet, checksum)", |b| {
        b.iter(|| Secret::parse(black_box(&text)).unwrap());
    });
    let key = RefreshKey::from_signature(b"a signature of the seed");
    let at = Timestamp::from_millis(1_800_000_000_000);
    let refresh = RefreshToken::issue(&key, ClientId::generate(), 42, at, 0);
    let text = refresh.expose().to_owned();
    c.bench_function(
        "parse and authenticate a refresh token (HMAC-SHA256)",
        |b| {
            b.iter(|| RefreshToken::parse(&key, black_box(&text)).unwrap());
        },
    );
}

fn claim_building(c: &mut Criterion) {
    let claims = claims();
    c.bench_function("claims to a JWT signing input (JSON, base64url)", |b| {
        b.iter(|| jwt::signing_input(black_box("kid-1"), black_box(&claims)).unwrap());
    });
}

fn signing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let signer = LocalKeySigner::load_or_create(&dir.path().join("key.pem")).unwrap();
    let input = jwt::signing_input(signer.public_key().kid(), &claims()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    c.bench_function("RS256 signature with the local key", |b| {
        b.iter(|| {
            runtime
                .block_on(signer.sign(black_box(input.as_bytes())))
                .unwrap()
        });
    });
}

criterion_group!(benches, parsing, claim_building, signing);
criterion_main!(benches);
