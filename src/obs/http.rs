//! The metrics endpoint: a small HTTP/1.1 server on a thread of its own (std networking; it
//! is no shard), answering `GET /metrics` from the shards' published snapshots and latency
//! histograms, and `GET /latency.hgrm` (every shard's merged). One request
//! per connection; anything that is not a well-formed request gets 400 and changes nothing.

use super::latency::LatencyTotals;
use super::metrics::Registry;
use super::prometheus::{self, Process};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head read; a longer one is refused with 400.
const MAX_HEAD: usize = 8192;
/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Latency,
    NotFound,
}

/// A well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    route: Route,
    /// HEAD: the headers without the body.
    head_only: bool,
    /// A method other than GET and HEAD.
    other_method: bool,
}

/// The request head up to its blank line is well-formed HTTP/1.x, or `None`.
fn parse_request(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let valid = parts.next().is_none()
        && token(method)
        && target.starts_with('/')
        && target.bytes().all(|b| b.is_ascii_graphic())
        && matches!(version, "HTTP/1.1" | "HTTP/1.0");
    if !valid {
        return None;
    }
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, _) = line.split_once(':')?;
        if !token(name) {
            return None;
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    let route = match path {
        "/metrics" => Route::Metrics,
        "/latency.hgrm" => Route::Latency,
        _ => Route::NotFound,
    };
    Some(Request {
        route,
        head_only: method == "HEAD",
        other_method: method != "GET" && method != "HEAD",
    })
}

/// What the endpoint serves.
#[derive(Debug)]
pub struct Endpoints {
    pub registry: Arc<Registry>,
    /// The shards' latency histograms (`None`: not measured).
    pub latency: Option<LatencyTotals>,
}

impl Endpoints {
    /// The endpoints of `registry`, owning its latency histograms' reading end.
    pub fn new(registry: Arc<Registry>) -> Self {
        let latency = registry.take_latency();
        Self { registry, latency }
    }

    /// Status, content type and body for `request` (`None`: malformed).
    fn answer(&mut self, request: Option<Request>) -> (&'static str, &'static str, String) {
        let text = "text/plain; charset=utf-8";
        let Some(request) = request else {
            return ("400 Bad Request", text, "malformed request\n".into());
        };
        if request.other_method {
            return ("405 Method Not Allowed", text, "only GET\n".into());
        }
        match request.route {
            Route::Metrics => {
                let mut body = String::with_capacity(16 * 1024);
                let process = Process {
                    uptime: self.registry.uptime(),
                    log_lines_dropped: super::dropped_lines(),
                };
                prometheus::render(&self.registry.read_all(), process, &mut body);
                if let Some(latency) = &mut self.latency {
                    latency.collect();
                    latency.render_prometheus(&mut body);
                }
                ("200 OK", prometheus::CONTENT_TYPE, body)
            }
            Route::Latency => match &mut self.latency {
                Some(latency) => {
                    latency.collect();
                    ("200 OK", text, latency.hgrm())
                }
                None => ("404 Not Found", text, "no latency histograms\n".into()),
            },
            Route::NotFound => ("404 Not Found", text, "not found\n".into()),
        }
    }
}

/// Serves `endpoints` on `listener` from a thread named `ringmq-metrics`.
pub fn spawn(listener: TcpListener, mut endpoints: Endpoints) -> io::Result<JoinHandle<()>> {
    super::thread::spawn_blocking_signals("ringmq-metrics", move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let _ = handle(stream, &mut endpoints);
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    })
}

fn handle(mut stream: TcpStream, endpoints: &mut Endpoints) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = match read_head(&mut stream)? {
        Some(head) => parse_request(&head),
        // The client left without a request: nothing to answer.
        None => return Ok(()),
    };
    let (status, content_type, body) = endpoints.answer(request);
    let head_only = request.is_some_and(|r| r.head_only);
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// Reads up to the blank line that ends the request head. `Some(bytes)` (possibly not a
/// complete head: too long, or cut short) when something came, `None` when nothing did.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find(&head, b"\r\n\r\n") {
            head.truncate(end + 2);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(Some(Vec::new()));
        }
        match stream.read(&mut chunk) {
            Ok(0) if head.is_empty() => return Ok(None),
            // Cut short: malformed (an empty head parses as nothing).
            Ok(0) => return Ok(Some(Vec::new())),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if head.is_empty() => return Err(e),
            Err(_) => return Ok(Some(Vec::new())),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &str) -> Option<Request> {
        parse_request(head.as_bytes())
    }

    #[test]
    fn a_get_of_metrics_is_routed() {
        let r = parsed("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            r,
            Some(Request {
                route: Route::Metrics,
                head_only: false,
                other_method: false
            })
        );
        let r = parsed("GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert_eq!(r.map(|r| r.route), Some(Route::Metrics));
        assert_eq!(
            parsed("GET / HTTP/1.1\r\n\r\n").map(|r| r.route),
            Some(Route::NotFound)
        );
        assert!(parsed("HEAD /metrics HTTP/1.1\r\n\r\n").is_some_and(|r| r.head_only));
        assert!(parsed("POST /metrics HTTP/1.1\r\n\r\n").is_some_and(|r| r.other_method));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for head in [
            "",
            "GET\r\n\r\n",
            "GET /metrics\r\n\r\n",
            "GET /metrics HTTP/2.0\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1 extra\r\n\r\n",
            "G(T /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
        ] {
            assert_eq!(parsed(head), None, "{head:?}");
        }
        assert_eq!(parse_request(b"GET /\xff HTTP/1.1\r\n\r\n"), None);
    }
}
