//! Start-up, written once: tracing, settings, adapters; then either the Lambda runtime for one
//! function or the local server for all of them.

use std::future::Future;
#[cfg(feature = "local")]
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
#[cfg(feature = "local")]
use crate::config::Backend;
use crate::config::{self, Settings};
use crate::http::{self, Function};

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
    let service = function_service(move || App::on_aws(settings.clone()), function);
    // Built beside the runtime's first poll for an invocation, so the two overlap; the first
    // request waits for it (or, if it failed, builds it again).
    let starting = service.clone();
    tokio::spawn(async move { starting.start().await });
    lambda_http::run(service).await
}

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

#[cfg(feature = "local")]
/// Serves every endpoint on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(app: Arc<App>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let service = http::service(app, None);
    // With each connection's peer address, what an allow-list is checked against.
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        std::net::SocketAddr,
    >(service);
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

#[cfg(feature = "local")]
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(feature = "local")]
/// The local server's URL without `M2M_PUBLIC_URL` (and so its issuer): its listen address,
/// or on every interface (0.0.0.0, ::) the loopback one. Never the Host a client sends.
fn listen_url(address: std::net::SocketAddr) -> String {
    let mut reached = address;
    if reached.ip().is_unspecified() {
        reached.set_ip(match reached {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
        tracing::warn!(
            "listening on every interface: links and the issuer name http://{reached}; \
             set M2M_PUBLIC_URL to the URL clients use"
        );
    }
    format!("http://{reached}")
}

#[cfg(feature = "local")]
/// `m2m-local`: every endpoint on one listener, on the embedded default unless DynamoDB and
/// KMS are configured.
pub async fn run_local() -> ExitCode {
    init_tracing();
    let env = config::process_env();
    let (mut settings, local) = match env.settings().and_then(|s| Ok((s, env.local_settings()?))) {
        Ok(both) => both,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    let listener = match tokio::net::TcpListener::bind(local.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            return fail(format_args!(
                "M2M_LISTEN: cannot listen on {}: {e}",
                local.listen
            ));
        }
    };
    let address = listener.local_addr().unwrap_or(local.listen);
    if settings.public_url.is_none() {
        settings.public_url = Some(listen_url(address));
    }
    let app = match start(settings).await {
        Ok(app) => app,
        Err(e) => return fail(format_args!("{e}")),
    };
    if let Err(e) = app.prepare_credential_checks().await {
        return fail(format_args!("start-up failed: {e}"));
    }
    let bootstrap = match local.vendor {
        Some((client_id, secret)) => app.vendors().ensure(client_id, &secret).await.map(|_| None),
        None => match app.vendors().any().await {
            Ok(true) => Ok(None),
            Ok(false) => app.vendors().create().await.map(Some),
            Err(e) => Err(e),
        },
    };
    match bootstrap {
        Ok(Some(created)) => println!(
            "Created the first vendor credential. The secret is shown only this once:\n  \
             M2M_VENDOR_CLIENT_ID={}\n  M2M_VENDOR_SECRET={}",
            created.record.client_id,
            created.secret.expose()
        ),
        Ok(None) => {}
        Err(e) => return fail(format_args!("cannot set up the vendor credential: {e}")),
    }
    println!("m2m-auth listening on http://{address}");
    match serve(Arc::new(app), listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("server error: {e}")),
    }
}

#[cfg(feature = "local")]
const ADMIN_USAGE: &str = "usage: m2m-admin create-vendor | rotate-key | retire-key

  create-vendor  Creates a vendor credential in the store the environment names (M2M_TABLE and
                 M2M_KMS_KEY_ID for DynamoDB and KMS, else the embedded store in M2M_DATA_DIR)
                 and prints its clientId and secret. The secret is not stored and not shown
                 again.
  rotate-key     Local key (M2M_DATA_DIR): makes a new signing key; the current one becomes the
                 previous key, which stays in the JWKS so JWTs it signed verify until they
                 expire. Restart m2m-local to sign with the new key.
  retire-key     Local key: deletes the previous key once its JWTs have expired (after the
                 longest token lifetime); restart m2m-local. On AWS, rotate with the template's
                 SigningKeyArn and PreviousSigningKeyArn parameters (see the README).";

#[cfg(feature = "local")]
/// `m2m-admin`: operator commands against the configured store and key.
pub async fn run_admin(args: &[String]) -> ExitCode {
    let command = match args {
        [command] if ["create-vendor", "rotate-key", "retire-key"].contains(&command.as_str()) => {
            command.as_str()
        }
        _ => {
            eprintln!("{ADMIN_USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = match config::process_env().settings() {
        Ok(settings) => settings,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    if command != "create-vendor" {
        return rotate_local_key(&settings, command == "rotate-key");
    }
    let app = match start(settings).await {
        Ok(app) => app,
        Err(e) => return fail(format_args!("{e}")),
    };
    match app.vendors().create().await {
        Ok(created) => {
            println!(
                "clientId: {}\nsecret:   {}",
                created.record.client_id,
                created.secret.expose()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format_args!("cannot create the vendor credential: {e}")),
    }
}

#[cfg(feature = "local")]
/// `m2m-admin rotate-key` (`rotate`) and `retire-key`, on the local key.
fn rotate_local_key(settings: &Settings, rotate: bool) -> ExitCode {
    let Backend::Embedded { data_dir } = &settings.backend else {
        return fail(format_args!(
            "on AWS, rotate the signing key with the template's SigningKeyArn and \
             PreviousSigningKeyArn parameters (see the README)"
        ));
    };
    let keys = crate::adapters::LocalKeys::in_folder(data_dir);
    let longest = settings
        .access_token_ttl_seconds
        .max(settings.vendor_token_ttl_seconds);
    let told = if rotate {
        keys.rotate().map(|()| {
            format!(
                "New signing key in {}; the previous one stays published.\n\
                 Restart m2m-local to sign with it. Once {longest} s have passed (the longest \
                 token lifetime), run m2m-admin retire-key and restart again.",
                keys.current.display()
            )
        })
    } else {
        keys.retire().map(|retired| {
            match retired {
                true => "Previous signing key deleted; restart m2m-local to stop publishing it.",
                false => "No rotation under way: there is no previous signing key.",
            }
            .to_owned()
        })
    };
    match told {
        Ok(told) => {
            println!("{told}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format_args!("{e}")),
    }
}

#[cfg(feature = "local")]
/// Builds the app, turning a failure into a message that says what could not start.
async fn start(settings: Settings) -> crate::error::Result<App, String> {
    App::build(settings).await.map_err(|e| match e {
        crate::error::Error::Internal(cause) | crate::error::Error::Unavailable(cause) => {
            format!("start-up failed: {cause:?}")
        }
        other => format!("start-up failed: {other}"),
    })
}

#[cfg(feature = "local")]
fn fail(message: std::fmt::Arguments<'_>) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
