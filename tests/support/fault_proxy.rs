//! A TCP proxy on 127.0.0.1 in front of moto that a test switches between forwarding,
//! refusing connections, hanging and answering every AWS call "throttled", as a failing
//! DynamoDB or KMS would.
//!
//! It also logs the AWS calls it forwards (their `X-Amz-Target`, such as
//! `DynamoDB_20120810.GetItem` or `TrentService.Sign`), so a test can count what a request costs.
//!
//! Switching closes every open connection, so pooled connections of the SDK see the new
//! fault at once. Refusing closes the listening socket itself (connect gets ECONNREFUSED) and
//! binds the same port again when the fault clears.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Forward,
    Refuse,
    Hang,
    Throttle,
}

/// The AWS calls forwarded, in order, by their `X-Amz-Target` operation name (an SDK retry
/// of a call is not counted again), and the bytes answered to them.
#[derive(Default)]
struct Log {
    calls: Mutex<Vec<String>>,
    answered: AtomicUsize,
}

type CallLog = Arc<Log>;

pub struct FaultProxy {
    pub url: String,
    mode: watch::Sender<Fault>,
    calls: CallLog,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("moto's endpoint is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Fault::Forward);
        let calls = CallLog::default();
        let task = tokio::spawn(serve(
            listener,
            address,
            upstream,
            watching,
            Arc::clone(&calls),
        ));
        Self {
            url: format!("http://{address}"),
            mode,
            calls,
            task,
        }
    }

    /// The operations forwarded since the last call (`GetItem`, `Sign`, …), and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.calls.lock().unwrap())
    }

    /// The bytes upstream answered since the last call (what reads cost), and forgets them.
    pub fn take_answered(&self) -> usize {
        self.calls.answered.swap(0, Ordering::SeqCst)
    }

    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }
}

async fn serve(
    mut listener: TcpListener,
    address: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Fault>,
    calls: CallLog,
) {
    loop {
        if *mode.borrow_and_update() == Fault::Refuse {
            drop(listener);
            while *mode.borrow_and_update() == Fault::Refuse {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            listener = rebind(address).await;
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let fault = *mode.borrow();
                let calls = Arc::clone(&calls);
                tokio::spawn(connection(client, upstream, fault, mode.clone(), calls));
            }
            changed = mode.changed() => if changed.is_err() { return },
        }
    }
}

async fn rebind(address: SocketAddr) -> TcpListener {
    loop {
        match TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Serves one connection under `fault` until it ends or the fault changes.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    mut mode: watch::Receiver<Fault>,
    calls: CallLog,
) {
    let work = async {
        match fault {
            Fault::Forward => {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    forward(client, server, &calls).await;
                }
            }
            Fault::Throttle => throttle(&mut client).await,
            Fault::Hang | Fault::Refuse => std::future::pending().await,
        }
    };
    tokio::select! {
        () = work => {}
        _ = mode.changed() => {}
    }
}

/// Forwards both ways, noting the operation of each request that goes up.
async fn forward(client: TcpStream, server: TcpStream, calls: &CallLog) {
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut server_reads, mut server_writes) = server.into_split();
    let up = async {
        let mut pending = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match client_reads.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = request_length(&pending) {
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                // A retry (`amz-sdk-request: attempt=2; max=3`) is the same call again.
                let attempt = head
                    .lines()
                    .find_map(|line| line.strip_prefix("amz-sdk-request:"))
                    .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("attempt=")))
                    .and_then(|n| n.trim().parse::<u32>().ok());
                let retry = attempt.is_some_and(|n| n > 1);
                let target = head
                    .lines()
                    .find_map(|line| line.strip_prefix("x-amz-target:"))
                    .filter(|_| !retry)
                    .map(|t| t.trim().rsplit('.').next().unwrap_or_default().to_owned());
                calls
                    .calls
                    .lock()
                    .unwrap()
                    .extend(target.map(|t| operation_name(&t)));
                pending.drain(..end);
            }
            if server_writes.write_all(&chunk[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = match server_reads.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            calls.answered.fetch_add(n, Ordering::SeqCst);
            if client_writes.write_all(&chunk[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// `getitem` as AWS spells it: `GetItem` (the log is lower-cased by the parse).
fn operation_name(lower: &str) -> String {
    const NAMES: [&str; 14] = [
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "Sign",
        "GetPublicKey",
        "DescribeKey",
        "Encrypt",
        "Decrypt",
    ];
    NAMES
        .iter()
        .find(|name| name.eq_ignore_ascii_case(lower))
        .map_or_else(|| lower.to_owned(), |name| (*name).to_owned())
}

/// Answers each request on the connection as DynamoDB and KMS answer when they throttle.
async fn throttle(client: &mut TcpStream) {
    const BODY: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // A whole request: its headers, then Content-Length bytes of body.
        let request_end = loop {
            if let Some(end) = request_length(&buffer) {
                break end;
            }
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        buffer.drain(..request_end);
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\n\
             x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        );
        if client.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The length of the first complete request in `buffer`, if it holds one.
fn request_length(buffer: &[u8]) -> Option<usize> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let body = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buffer.len() >= head_end + body).then_some(head_end + body)
}
