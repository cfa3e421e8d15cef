//! Every endpoint on one local listener: `cargo run --release --bin m2m-local`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    m2m_shared::runtime::run_local().await
}
