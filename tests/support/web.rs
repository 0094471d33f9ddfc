//! A local HTTP(S) server for the outbound tests: the only kind of server reachable here is one
//! on loopback. It records what it receives and offers the misbehaviours the runner must
//! survive: big bodies (with and without a length), a head that never comes, a redirect to the cloud
//! metadata address, and a request that is never answered (to see it aborted).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

type Reply = Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    /// `/hold` requests whose connection has since been dropped by the client.
    holds_aborted: AtomicUsize,
    holds_started: AtomicUsize,
}

/// A running test server; stops when dropped.
pub struct WebServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebServer {
    /// Plain HTTP on 127.0.0.1.
    pub async fn start() -> WebServer {
        WebServer::start_inner(None).await
    }

    /// HTTPS on 127.0.0.1 with a self-signed certificate for `127.0.0.1` and `localhost`;
    /// returns the certificate (DER) to trust.
    pub async fn start_tls() -> (WebServer, Vec<u8>) {
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a test certificate");
        let der = cert.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("a private key");
        #[allow(deprecated)] // ring: see runner/src/sandbox/outbound/mod.rs
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone().into()], key)
            .expect("a TLS server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (WebServer::start_inner(Some(acceptor)).await, der)
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> WebServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(respond(state, req).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        WebServer { addr, state, task }
    }

    /// `http://127.0.0.1:PORT` + path (or `https://` for a TLS server: pass the scheme).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn holds_started(&self) -> usize {
        self.state.holds_started.load(Ordering::SeqCst)
    }

    pub fn holds_aborted(&self) -> usize {
        self.state.holds_aborted.load(Ordering::SeqCst)
    }
}

fn full(body: impl Into<Bytes>) -> http_body_util::combinators::BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

fn query_n(req: &Request<Incoming>) -> usize {
    req.uri()
        .query()
        .and_then(|q| q.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}

/// Counts a `/hold` request as aborted when its handler is dropped unfinished.
struct HoldGuard(Arc<State>);

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.0.holds_aborted.fetch_add(1, Ordering::SeqCst);
    }
}

async fn respond(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let n = query_n(&req);
    let method = req.method().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    state.seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        headers,
        body,
    });
    match path.as_str() {
        "/ok" => Response::new(full("ok")),
        "/big" => Response::new(full(vec![b'x'; n])),
        "/big-chunked" => {
            // No Content-Length: the cap must cut it off mid-stream.
            let chunks = (0..n.div_ceil(16 * 1024))
                .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; 16 * 1024]))));
            Response::new(StreamBody::new(futures::stream::iter(chunks)).boxed())
        }
        "/slow-head" => {
            // Never answers: the client's first-byte timeout must end the wait.
            std::future::pending::<()>().await;
            Response::new(full("late"))
        }
        "/redirect-metadata" => Response::builder()
            .status(302)
            .header("location", "http://169.254.169.254/latest/meta-data/")
            .body(full(""))
            .unwrap(),
        "/hold" => {
            state.holds_started.fetch_add(1, Ordering::SeqCst);
            // Held until the client drops the connection, which drops this future and the
            // guard with it (counted as aborted).
            let _guard = HoldGuard(state.clone());
            std::future::pending::<()>().await;
            Response::new(full("held"))
        }
        _ => Response::builder()
            .status(404)
            .body(full("not found"))
            .unwrap(),
    }
}
