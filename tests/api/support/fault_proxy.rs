//! A TCP proxy on 127.0.0.1 in front of moto that a test switches between forwarding,
//! refusing connections, hanging and answering every AWS call "throttled", as a failing
//! DynamoDB or KMS would.
//!
//! Switching closes every open connection, so pooled connections of the SDK see the new
//! fault at once. Refusing closes the listening socket itself (connect gets ECONNREFUSED) and
//! binds the same port again when the fault clears.

use std::net::SocketAddr;

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

pub struct FaultProxy {
    pub url: String,
    mode: watch::Sender<Fault>,
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
        let task = tokio::spawn(serve(listener, address, upstream, watching));
        Self {
            url: format!("http://{address}"),
            mode,
            task,
        }
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
                tokio::spawn(connection(client, upstream, fault, mode.clone()));
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
) {
    let work = async {
        match fault {
            Fault::Forward => {
                if let Ok(mut server) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
