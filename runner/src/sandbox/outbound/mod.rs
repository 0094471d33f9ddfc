//! Outbound HTTP for jobs (`wasi:http/outgoing-handler`), deny by default.
//!
//! `wasmtime-wasi-http` is built without its default sender, so every request a guest makes
//! reaches `AttemptHttp::send_request`, which enforces, in order:
//! 1. the attempt's request cap (runner's, lowered by the tenant's policy);
//! 2. the job's grant and the tenant's ceiling (`AttemptGrants::hosts`), on `scheme://host:port`;
//! 3. the request body cap (a `Content-Length` over it is refused before connecting);
//! 4. our own DNS resolution, then only addresses that are globally routable (`addresses`),
//!    and a connection only to those checked addresses (no second lookup, so no rebinding);
//! 5. the runner-wide connection cap;
//! 6. TLS with rustls and the web PKI roots (plus `extra_roots`);
//! 7. timeouts: what the guest asked for, clamped to the runner's caps and to the time the
//!    attempt has left; and the response body cap.
//!
//! Redirects are never followed here: the guest sees the 3xx, and the request it makes to
//! follow it comes through this hook again. Each denial writes a warning to the run's log naming
//! `scheme://host:port` (never the path or query: they often carry keys) and the rule. Every
//! in-flight request lives in the attempt's store: ending the attempt (done, timed out,
//! cancelled) drops the store and with it the connections.

pub(crate) mod addresses;
mod body;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::uri::Scheme;
use http::{Request, Response, Uri};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use self::body::{RequestBody, ResponseBody};
use super::grants::GrantCell;
use super::journal::Journal;
use crate::model::Level;

/// Runner-wide settings of outbound HTTP (flags `--outbound-*`).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Longest DNS lookup plus TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Longest wait for the response head once the request is sent.
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of the response body.
    pub between_bytes_timeout: Duration,
    pub max_request_body_bytes: u64,
    /// A tenant's policy may lower it, never raise it.
    pub max_response_body_bytes: u64,
    /// A tenant's policy may lower it, never raise it.
    pub max_requests_per_attempt: u32,
    /// Open outbound connections of all attempts together.
    pub max_connections: usize,
    /// Tests only: loopback addresses (and nothing else that is local) may be connected.
    pub allow_loopback: bool,
    /// Certificates (DER) trusted beside the web PKI roots: a private CA, or a test's.
    pub extra_roots: Vec<Vec<u8>>,
    /// Networks refused on top of the built-in local ranges: internal services with public
    /// addresses, the runner's own (`--outbound-blocked-networks`).
    pub blocked_networks: Vec<addresses::BlockedNetwork>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_request_body_bytes: 10 * 1024 * 1024,
            max_response_body_bytes: 10 * 1024 * 1024,
            max_requests_per_attempt: 100,
            max_connections: 256,
            allow_loopback: false,
            extra_roots: Vec::new(),
            blocked_networks: Vec::new(),
        }
    }
}

/// The certificates (DER) in a PEM file, for `OutboundConfig::extra_roots`.
pub fn read_pem_certificates(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("reading PEM certificates: {e}"))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("reading PEM certificates: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "the file holds no certificate");
    Ok(certs)
}

/// What every attempt shares: the settings, the TLS client and the connection cap.
pub(crate) struct Outbound {
    config: OutboundConfig,
    tls: tokio_rustls::TlsConnector,
    connections: Arc<Semaphore>,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> anyhow::Result<Arc<Outbound>> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in &config.extra_roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| anyhow::anyhow!("an extra root certificate is not usable: {e}"))?;
        }
        // ring, as wasmtime-wasi-http itself uses: it builds with a C compiler alone. Its
        // provider has no post-quantum key exchange (hence the deprecation); X25519 and the
        // NIST curves remain.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(Outbound {
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            config,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        }))
    }
}

/// What one attempt did on the network (recorded on the attempt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboundUsage {
    pub requests: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub denied: u64,
}

#[derive(Debug, Default)]
pub(crate) struct UsageCounters {
    requests: AtomicU64,
    bytes_out: Arc<AtomicU64>,
    bytes_in: Arc<AtomicU64>,
    denied: AtomicU64,
    /// Warnings written (or left out past `MAX_NOTES`).
    notes: AtomicU64,
}

impl UsageCounters {
    /// Says how many refusal warnings were left out of the log, if any.
    pub fn finish_notes(&self, journal: &Journal) {
        let notes = self.notes.load(Ordering::Relaxed);
        if notes > MAX_NOTES {
            journal.push_note(
                Level::Warn,
                format!(
                    "{} more outbound refusals not logged: an attempt logs at most {MAX_NOTES}",
                    notes - MAX_NOTES
                ),
            );
        }
    }

    /// `None` when the attempt never tried a request.
    pub fn usage(&self) -> Option<OutboundUsage> {
        let usage = OutboundUsage {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
        };
        (usage.requests > 0).then_some(usage)
    }
}

/// The `wasi:http` hooks of one attempt.
pub(crate) struct AttemptHttp {
    attempt: Arc<AttemptNet>,
}

struct AttemptNet {
    shared: Arc<Outbound>,
    /// This attempt's share of connections (`MAX_ATTEMPT_CONNECTIONS`).
    connections: Arc<Semaphore>,
    grants: Arc<GrantCell>,
    journal: Arc<Journal>,
    deadline: Instant,
    usage: Arc<UsageCounters>,
}

impl AttemptHttp {
    pub fn new(
        shared: Arc<Outbound>,
        grants: Arc<GrantCell>,
        journal: Arc<Journal>,
        deadline: Instant,
        usage: Arc<UsageCounters>,
    ) -> AttemptHttp {
        AttemptHttp {
            attempt: Arc::new(AttemptNet {
                shared,
                connections: Arc::new(Semaphore::new(MAX_ATTEMPT_CONNECTIONS)),
                grants,
                journal,
                deadline,
                usage,
            }),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Warnings about refused requests one attempt writes to its run's log.
const MAX_NOTES: u64 = 20;

/// Longest `scheme://host:port` a log line quotes (a guest chooses the host).
const MAX_TARGET_BYTES: usize = 256;

/// Connections one attempt may hold open at once (below the runner-wide cap, so one tenant's
/// attempts cannot hold every connection by never reading their responses).
const MAX_ATTEMPT_CONNECTIONS: usize = 16;

impl WasiHttpHooks for AttemptHttp {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send> {
        let attempt = self.attempt.clone();
        Box::new(async move { attempt.send(request, options).await })
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        let certificate = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
        if certificate {
            ErrorCode::TlsCertificateError
        } else {
            ErrorCode::TlsProtocolError
        }
    }

    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        // The guest's request or the server's answer was malformed: not the runner's problem,
        // so no warning in the runner's own log.
        tracing::debug!(error = %err, "outbound HTTP error");
        // An error of our own body wrappers (a cap), carried through hyper: keep its code.
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            match e.downcast_ref::<Error>() {
                Some(Error::HttpRequestBodySize(n)) => return ErrorCode::HttpRequestBodySize(*n),
                Some(Error::HttpResponseBodySize(n)) => {
                    return ErrorCode::HttpResponseBodySize(*n);
                }
                Some(Error::ConnectionReadTimeout) => return ErrorCode::ConnectionReadTimeout,
                _ => {}
            }
            source = e.source();
        }
        if err.is_timeout() {
            ErrorCode::ConnectionReadTimeout
        } else if err.is_incomplete_message() {
            ErrorCode::HttpResponseIncomplete
        } else {
            ErrorCode::HttpProtocolError
        }
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        match err.kind() {
            std::io::ErrorKind::TimedOut => ErrorCode::ConnectionTimeout,
            _ => ErrorCode::ConnectionRefused,
        }
    }
}

/// A connected stream, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl AttemptNet {
    fn deny(&self, target: &str, why: &str) -> Error {
        self.usage.denied.fetch_add(1, Ordering::Relaxed);
        self.note(format!("outbound request denied: {target} ({why})"));
        Error::HttpRequestDenied
    }

    /// A warning in the run's log, at most `MAX_NOTES` per attempt: past that a guest looping
    /// on refused requests would write lines without bound. The rest are counted, and
    /// `finish_notes` says how many were left out.
    fn note(&self, message: String) {
        if self.usage.notes.fetch_add(1, Ordering::Relaxed) < MAX_NOTES {
            self.journal.push_note(Level::Warn, message);
        }
    }

    async fn send(
        &self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(Response<WasiBody>, IoFuture), Error> {
        let config = &self.shared.config;
        let n = self.usage.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let (mut parts, body) = request.into_parts();
        // Wrapped first, so that every early return below drains what the guest still writes.
        let body = RequestBody::new(
            body,
            config.max_request_body_bytes,
            self.usage.bytes_out.clone(),
        );
        let https = match parts.uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(Error::HttpProtocolError),
        };
        let host = parts
            .uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = parts.uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let scheme = if https { "https" } else { "http" };
        let shown = super::journal::truncate(&host, MAX_TARGET_BYTES);
        let target = if host.contains(':') {
            format!("{scheme}://[{shown}]:{port}")
        } else {
            format!("{scheme}://{shown}:{port}")
        };

        let grants = match self.grants.get().await {
            Ok(grants) => grants,
            Err(e) => {
                self.note(format!(
                    "outbound request to {target} failed: the runner could not read the job's \
                     grants: {e}"
                ));
                return Err(Error::InternalError(Some(
                    "the runner could not read the job's grants".to_owned(),
                )));
            }
        };
        let max_requests = grants
            .max_requests
            .map_or(config.max_requests_per_attempt, |t| {
                t.min(config.max_requests_per_attempt)
            });
        if n > u64::from(max_requests) {
            return Err(self.deny(
                &target,
                &format!("an attempt may make at most {max_requests} requests"),
            ));
        }
        if let Err(why) = (grants.hosts)(scheme, &host, port) {
            return Err(self.deny(&target, &why));
        }
        let length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(length) = length
            && length > config.max_request_body_bytes
        {
            self.note(format!(
                "outbound request to {target} refused: its body of {length} bytes is over the \
                 {} byte cap",
                config.max_request_body_bytes
            ));
            return Err(Error::HttpRequestBodySize(Some(length)));
        }

        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let clamp = |asked: Option<Duration>, cap: Duration| {
            asked
                .unwrap_or(cap)
                .min(cap)
                .min(remaining)
                .max(Duration::from_millis(1))
        };
        let options = options.unwrap_or_default();
        let connect_timeout = clamp(options.connect_timeout, config.connect_timeout);
        let first_byte_timeout = clamp(options.first_byte_timeout, config.first_byte_timeout);
        let between_bytes = clamp(options.between_bytes_timeout, config.between_bytes_timeout);
        let connect_by = tokio::time::Instant::now() + connect_timeout;

        let addrs = self.resolve(&host, port, connect_by).await?;
        let mut refused = None;
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| {
                let ip = addr.ip();
                if config.blocked_networks.iter().any(|n| n.contains(ip)) {
                    refused.get_or_insert((ip, "in a network the operator blocked"));
                    return false;
                }
                if config.allow_loopback && addresses::is_loopback(ip) {
                    return true;
                }
                match addresses::forbidden_reason(ip) {
                    Some(why) => {
                        refused.get_or_insert((ip, why));
                        false
                    }
                    None => true,
                }
            })
            .collect();
        if addrs.is_empty() {
            let why = match refused {
                Some((ip, why)) => format!("it resolves to {ip}, which is {why}"),
                None => "it resolves to no address".to_owned(),
            };
            self.usage.denied.fetch_add(1, Ordering::Relaxed);
            self.note(format!("outbound request denied: {target} ({why})"));
            return Err(Error::DestinationIpProhibited);
        }

        // This attempt's share first, then the runner's.
        let own = tokio::time::timeout_at(connect_by, self.connections.clone().acquire_owned())
            .await
            .map_err(|_| Error::ConnectionLimitReached)?
            .map_err(|_| Error::ConnectionLimitReached)?;
        let shared =
            tokio::time::timeout_at(connect_by, self.shared.connections.clone().acquire_owned())
                .await
                .map_err(|_| Error::ConnectionLimitReached)?
                .map_err(|_| Error::ConnectionLimitReached)?;
        let permit = (own, shared);
        let tcp = connect_any(&addrs, connect_by).await?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let tls = tokio::time::timeout_at(connect_by, self.shared.tls.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, mut conn) = tokio::time::timeout_at(
            connect_by,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // Origin form on the wire: scheme and authority are only for proxies.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
        let request = Request::from_parts(parts, body.boxed_unsync());

        // Drive the connection while waiting for the response head.
        let respond = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
        tokio::pin!(respond);
        let mut conn_done = false;
        let response = loop {
            tokio::select! {
                response = &mut respond => break response,
                result = &mut conn, if !conn_done => {
                    conn_done = true;
                    if let Err(e) = result {
                        return Err(Error::from(e));
                    }
                }
            }
        };
        let response = response
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)?;

        let cap = grants
            .max_response_bytes
            .map_or(config.max_response_body_bytes, |t| {
                t.min(config.max_response_body_bytes)
            });
        let length = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(length) = length
            && length > cap
        {
            self.note(format!(
                "outbound response from {target} refused: its body of {length} bytes is over \
                 the {cap} byte cap"
            ));
            return Err(Error::HttpResponseBodySize(Some(length)));
        }
        let received = self.usage.bytes_in.clone();
        let response = response.map(|incoming| {
            ResponseBody::new(incoming, cap, received, between_bytes).boxed_unsync()
        });
        let io: IoFuture = Box::new(async move {
            // The permit is held until the connection is done.
            let _permit = permit;
            if conn_done {
                return Ok(());
            }
            conn.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                }
            })
        });
        Ok((response, io))
    }

    async fn resolve(
        &self,
        host: &str,
        port: u16,
        by: tokio::time::Instant,
    ) -> Result<Vec<SocketAddr>, Error> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match tokio::time::timeout_at(by, tokio::net::lookup_host((host, port))).await {
            Err(_) => Err(Error::DnsTimeout),
            Ok(Err(_)) => Err(Error::DestinationNotFound),
            Ok(Ok(addrs)) => Ok(addrs.collect()),
        }
    }
}

/// Connects to the first address that answers.
async fn connect_any(addrs: &[SocketAddr], by: tokio::time::Instant) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for addr in addrs {
        match tokio::time::timeout_at(by, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    }
    Err(last)
}
