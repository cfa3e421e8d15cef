//! Operator commands: `m2m-admin create-vendor`, the signing key, and `m2m-admin vendors`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    m2m_shared::runtime::run_admin(&args).await
}
