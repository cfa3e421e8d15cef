use m2m_shared::http::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    m2m_shared::runtime::run_function(Function::Audits).await
}
