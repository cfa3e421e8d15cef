//! Start-up, written once: tracing, settings, adapters; then either the Lambda runtime for one
//! function or the local server for all of them.

use std::future::Future;
use std::sync::Arc;

use crate::app::App;
use crate::config::{self, Settings};
use crate::http::{self, Function};

#[cfg(feature = "local")]
mod local;
#[cfg(feature = "local")]
pub use local::{run_admin, run_local, serve};

/// Logs as JSON lines to stderr, filtered by `RUST_LOG` (default `info`).
///
/// Whatever `RUST_LOG` asks, only the project's own code (targets `m2m_…`) may log beyond
/// `info`: at `debug` and `trace` the AWS SDK, the HTTP stack and the Lambda runtime print
/// requests, responses and raw events, which hold secrets, hashes and tokens. An allow-list,
/// so that a dependency added later stays quiet too.
pub fn init_tracing() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let wanted = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ours_beyond_info = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::INFO || meta.target().starts_with(OWN_TARGETS)
    });
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .without_time()
        .with_filter(wanted)
        .with_filter(ours_beyond_info);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The tracing targets of the project's own crates (`m2m_shared`, `m2m_verify`, ...).
const OWN_TARGETS: &str = "m2m_";

/// A Lambda function's cold start: tracing, then settings (DynamoDB and KMS required).
fn lambda_settings() -> Result<Settings, lambda_http::Error> {
    init_tracing();
    Ok(config::process_env().aws_settings()?)
}

/// The whole of a Lambda binary: settings once per cold start, then `function`'s service.
pub async fn run_function(function: Function) -> Result<(), lambda_http::Error> {
    let settings = lambda_settings()?;
    let url_is_set = settings.public_url.is_some();
    let service = function_service(move || App::on_aws(settings.clone()), function);
    // Built beside the runtime's first poll for an invocation, so the two overlap; the first
    // request waits for it (or, if it failed, builds it again).
    let starting = service.clone();
    tokio::spawn(async move { starting.start().await });
    let metrics = embedded_metrics()?;
    let handler = tower::service_fn(move |request: lambda_http::Request| {
        if !url_is_set && names_no_url(&request) {
            refuse_start();
        }
        let mut service = service.clone();
        async move { tower::Service::call(&mut service, request).await }
    });
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, handler).await
}

/// A Lambda function's metrics: CloudWatch Embedded Metric Format documents on stdout after
/// each invocation (which CloudWatch Logs turns into metrics), in the namespace
/// `M2M_METRICS_NAMESPACE`, each naming its invocation's `requestId`.
fn embedded_metrics() -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_http::Error>
{
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(config::process_env().metrics_namespace())
        .with_lambda_request_id("requestId")
        .init()?;
    crate::metrics::describe();
    Ok(collector)
}

/// Whether a request came through a front whose events do not name the service's URL: an
/// Application Load Balancer (API Gateway and Lambda function URLs name theirs).
fn names_no_url(request: &lambda_http::Request) -> bool {
    use lambda_http::RequestExt;
    !matches!(
        request.request_context_ref(),
        Some(lambda_http::request::RequestContext::ApiGatewayV2(_))
    )
}

/// Behind such a front without `M2M_PUBLIC_URL`, the function cannot name itself (in JWTs'
/// `iss`, discovery, the portal): rather than a 500 for every request, it refuses to start,
/// saying what to set. Lambda reports the exit, and starts the function again for the next.
fn refuse_start() -> ! {
    let problem = "start-up refused: requests come through a front that names no URL (an \
                   Application Load Balancer); set M2M_PUBLIC_URL to the URL clients use";
    tracing::error!(problem);
    std::process::exit(EXIT_CONFIG);
}

/// The exit status of a refused start-up: a configuration error (`EX_CONFIG` of sysexits).
const EXIT_CONFIG: i32 = 78;

/// A function's service, whose app is built on first need and then kept: a cold start while
/// KMS is unreachable, slow or throttling answers 503 and tries again on the next request,
/// instead of failing the Lambda init (which API Gateway turns into a 500).
#[derive(Clone)]
pub struct FunctionService<F> {
    start: F,
    function: Function,
    started: Arc<tokio::sync::OnceCell<http::Service>>,
}

/// `start` builds the app; see [`FunctionService`].
pub fn function_service<F, Fut>(start: F, function: Function) -> FunctionService<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = crate::error::Result<App>>,
{
    FunctionService {
        start,
        function,
        started: Arc::default(),
    }
}

impl<F, Fut> FunctionService<F>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = crate::error::Result<App>> + Send,
{
    /// The started service, starting it if no earlier call did.
    async fn service(&self) -> crate::error::Result<http::Service> {
        let function = self.function;
        let started = self.started.get_or_try_init(|| async {
            let app = (self.start)().await?;
            if function.checks_credentials() {
                app.prepare_credential_checks().await?;
            }
            Ok::<_, crate::error::Error>(http::service(Arc::new(app), Some(function)))
        });
        started.await.cloned()
    }

    /// Starts the app now, logging why if it cannot yet.
    pub async fn start(&self) {
        if let Err(e) = self.service().await {
            tracing::warn!(error = ?e, "start-up incomplete; the next request tries again");
        }
    }
}

impl<F, Fut> tower::Service<lambda_http::Request> for FunctionService<F>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = crate::error::Result<App>> + Send,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: lambda_http::Request) -> Self::Future {
        use axum::response::IntoResponse;
        use tower::ServiceExt;
        let this = self.clone();
        Box::pin(async move {
            match this.service().await {
                Ok(service) => service.oneshot(request).await,
                Err(e) => Ok(e.into_response()),
            }
        })
    }
}

/// The `audit-stream` function: the table's stream of audit events, put on the EventBridge bus
/// `M2M_AUDIT_BUS`, with partial batch responses.
pub async fn run_audit_stream() -> Result<(), lambda_http::Error> {
    init_tracing();
    let bus = config::process_env().audit_bus()?;
    let aws = crate::adapters::aws::sdk_config_loader().load().await;
    let publisher =
        crate::audit_stream::Publisher::new(aws_sdk_eventbridge::Client::new(&aws), bus);
    let publisher = &publisher;
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| async move {
            Ok::<_, std::convert::Infallible>(publisher.publish(event.payload).await)
        },
    ))
    .await
}

/// The `provisioning` function: directory events from SQS, with partial batch responses.
pub async fn run_provisioning() -> Result<(), lambda_http::Error> {
    let app = App::on_aws(lambda_settings()?).await?;
    let app = &app;
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, std::convert::Infallible>(
                crate::provisioning::handle_batch(app, event.payload).await,
            )
        },
    ))
    .await
}
