//! `GET /health` (alive) and `GET /health/ready` (the store and the signer answer).

use m2m_shared::http::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    m2m_shared::runtime::run_function(Function::Health).await
}
