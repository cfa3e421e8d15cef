//! Audit events from the table's stream, put on the EventBridge bus for a SIEM.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    m2m_shared::runtime::run_audit_stream().await
}
