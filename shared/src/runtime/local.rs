//! The local server (`m2m-local`) and the operator commands (`m2m-admin`): the `local`
//! feature, which no Lambda function needs.

use std::process::ExitCode;
use std::sync::Arc;

use super::init_tracing;
use crate::app::App;
use crate::config::{self, Backend, Settings};
use crate::domain::token::DEFAULT_VENDOR_NAME;
use crate::http;

/// Serves every endpoint on `listener` until Ctrl-C or SIGTERM; then takes no new request,
/// lets those under way finish (for [`DRAIN`] at most) and writes what the app holds in memory.
pub async fn serve(app: Arc<App>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let service = http::service(Arc::clone(&app), None);
    // With each connection's peer address, what an allow-list is checked against.
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        std::net::SocketAddr,
    >(service);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = Arc::clone(&stopping);
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing the requests under way");
        signalled.notify_one();
    });
    let served = tokio::select! {
        served = server => served,
        () = async { stopping.notified().await; tokio::time::sleep(DRAIN).await } => {
            tracing::warn!("stopping: requests still under way after {} s are cut", DRAIN.as_secs());
            Ok(())
        }
    };
    app.shut_down().await;
    served
}

/// How long a stop waits for the requests under way: well within the 10 s a container's stop
/// gives before it kills.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

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

/// Keeps the metrics (see [`crate::metrics`]) and serves them in Prometheus' text format at
/// `GET /metrics` on `listen`: a listener of its own, so that the API's address never shows
/// them.
async fn serve_metrics(listen: std::net::SocketAddr) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&crate::metrics::BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    crate::metrics::describe();
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let render = axum::routing::get(move || std::future::ready(prometheus.render()));
    let router = axum::Router::new().route("/metrics", render);
    let address = listener.local_addr().unwrap_or(listen);
    println!("metrics at http://{address}/metrics");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}

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
    if let Some(listen) = local.metrics_listen
        && let Err(e) = serve_metrics(listen).await
    {
        return fail(format_args!(
            "M2M_METRICS_LISTEN: cannot serve metrics on {listen}: {e}"
        ));
    }
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
    if let Err(e) = first_vendor(&app, local.vendor).await {
        return fail(format_args!("cannot set up the vendor credential: {e}"));
    }
    println!("m2m-auth listening on http://{address}");
    let app = Arc::new(app);
    let served = serve(Arc::clone(&app), listener).await;
    // The store closes cleanly when the last holder of the app lets go; a request cut by the
    // drain's bound may still hold it, and the runtime's end drops it then.
    drop(app);
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format_args!("server error: {e}")),
    }
}

/// The vendor credential the environment names, made sure of; else, in a store with none, a
/// first one, printed once.
async fn first_vendor(
    app: &App,
    named: Option<(crate::domain::ClientId, crate::domain::Secret)>,
) -> crate::error::Result<()> {
    if let Some((client_id, secret)) = named {
        return app.vendors().ensure(client_id, &secret).await.map(drop);
    }
    if app.vendors().any().await? {
        return Ok(());
    }
    let created = app.vendors().create(DEFAULT_VENDOR_NAME.into()).await?;
    println!(
        "Created the first vendor credential. The secret is shown only this once:\n  \
         M2M_VENDOR_CLIENT_ID={}\n  M2M_VENDOR_SECRET={}",
        created.record.client_id,
        created.secret.expose()
    );
    Ok(())
}

mod vendors;

const ADMIN_USAGE: &str = "usage: m2m-admin create-vendor | rotate-key | retire-key | vendors ...

  create-vendor  Creates a vendor credential in the store the environment names (M2M_TABLE and
                 M2M_KMS_KEY_ID for DynamoDB and KMS, else the embedded store in M2M_DATA_DIR)
                 and prints its clientId and secret. The secret is not stored and not shown
                 again. For a first credential, before any server runs; while m2m-local runs
                 it holds the embedded store: use vendors create.
  rotate-key     Local key (M2M_DATA_DIR): makes a new signing key; the current one becomes the
                 previous key, which stays in the JWKS so JWTs it signed verify until they
                 expire. Restart m2m-local to sign with the new key.
  retire-key     Local key: deletes the previous key once its JWTs have expired (after the
                 longest token lifetime); restart m2m-local. On AWS, rotate with the template's
                 SigningKeyArn and PreviousSigningKeyArn parameters (see the README).
  export         Writes every record of the store the environment names to stdout, as JSON
                 lines (a header, then one record a line): vendor credentials and tokens (their
                 secrets' hashes, never a secret), the directory with its tombstones,
                 revocations, spent refresh tokens and the audit trail. No key is in it: back
                 up the local key files (M2M_DATA_DIR/signing-key*.pem) beside it if you keep
                 the embedded store. Stop m2m-local first (it holds the embedded store).
  import FILE    Loads an export (of either store) into the store the environment names:
                 vendors and the directory, then tokens, then the rest. A record already there
                 is left as it is, so running it again after a failure finishes the job.
";

/// `m2m-admin`: operator commands against the configured store and key, or, for the vendor's
/// credentials, against the running service.
pub async fn run_admin(args: &[String]) -> ExitCode {
    let usage = format!("{ADMIN_USAGE}{}", vendors::USAGE);
    let command = match args {
        [vendors, rest @ ..] if vendors == "vendors" => return vendors::run(rest, &usage).await,
        [export] if export == "export" => return with_store(backup::export).await,
        [import, file] if import == "import" => {
            let file = std::path::PathBuf::from(file);
            return with_store(|app| backup::import(app, file)).await;
        }
        [command] if ["create-vendor", "rotate-key", "retire-key"].contains(&command.as_str()) => {
            command.as_str()
        }
        _ => {
            eprintln!("{usage}");
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
        Err(e) if e.contains("already open") => {
            return fail(format_args!(
                "{e}\nm2m-local is running on this data folder and holds its store: create the \
                 credential through it with `m2m-admin vendors create NAME` (as an existing \
                 credential, M2M_VENDOR_CLIENT_ID and M2M_VENDOR_SECRET)"
            ));
        }
        Err(e) => return fail(format_args!("{e}")),
    };
    match app.vendors().create(DEFAULT_VENDOR_NAME.into()).await {
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

/// Runs `work` on the app of the store the environment names (an embedded store held by a
/// running m2m-local cannot be opened: the message says so).
async fn with_store<F, Fut>(work: F) -> ExitCode
where
    F: FnOnce(App) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let settings = match config::process_env().settings() {
        Ok(settings) => settings,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    match start(settings).await {
        Ok(app) => work(app).await,
        Err(e) if e.contains("already open") => fail(format_args!(
            "{e}\nm2m-local is running on this data folder and holds its store: stop it first"
        )),
        Err(e) => fail(format_args!("{e}")),
    }
}

mod backup;

/// `m2m-admin rotate-key` (`rotate`) and `retire-key`, on the local key.
fn rotate_local_key(settings: &Settings, rotate: bool) -> ExitCode {
    let Backend::Embedded { data_dir, .. } = &settings.backend else {
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

/// Builds the app, turning a failure into a message that says what could not start.
async fn start(settings: Settings) -> crate::error::Result<App, String> {
    App::build(settings).await.map_err(|e| match e {
        crate::error::Error::Internal(cause) | crate::error::Error::Unavailable(_, cause) => {
            format!("start-up failed: {cause:?}")
        }
        other => format!("start-up failed: {other}"),
    })
}

fn fail(message: std::fmt::Arguments<'_>) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
