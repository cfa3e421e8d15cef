//! Directory events from EventBridge, delivered through SQS.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    m2m_shared::runtime::run_provisioning().await
}
