//! The HTTP requests a listener answers (a connection whose first bytes
//! are `GET `): the WebSocket upgrade (RFC 6455 §4), `GET /metrics` when
//! metrics are on, 404 for anything else. A request is bounded in size and
//! header count, and is parsed once, when its blank line has arrived.

use super::ws;

/// Largest request head accepted, in bytes.
pub(super) const MAX_REQUEST: usize = 8 * 1024;
/// Most headers a request may have.
pub(super) const MAX_HEADERS: usize = 32;

/// A request head being collected.
#[derive(Debug, Default)]
pub(super) struct Request {
    buf: Vec<u8>,
}

/// What to do with a request once it is whole.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The head has not all arrived.
    Partial,
    /// Switch to WebSocket: send this answer, then decode the bytes from
    /// `rest` on (of the bytes given last) as frames.
    Upgrade { answer: Vec<u8>, rest: usize },
    /// `GET /metrics` with metrics on: send them, then close.
    Metrics,
    /// `GET /link/NAME` (`shirakumo.mess` §12): send the payload of that
    /// name (only its head for `HEAD`; only the `range` asked for, if
    /// any), then close.
    Link {
        name: String,
        body: bool,
        range: Option<ByteRange>,
    },
    /// Send this answer, then close.
    Answer(Vec<u8>),
}

/// A `Range: bytes=...` request header (RFC 9110 §14.1.2) asking for one
/// range; a header asking for several, or in another unit, is ignored
/// (the whole payload is sent, as the RFC allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ByteRange {
    /// `bytes=FIRST-` or `bytes=FIRST-LAST`.
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

impl ByteRange {
    fn parse(value: &[u8]) -> Option<ByteRange> {
        let text = std::str::from_utf8(value).ok()?.trim();
        let spec = text.strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let number = |t: &str| -> Option<u64> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        if first.is_empty() {
            return number(last).map(ByteRange::Suffix);
        }
        let first = number(first)?;
        if last.is_empty() {
            return Some(ByteRange::From(first, None));
        }
        let last = number(last)?;
        (last >= first).then_some(ByteRange::From(first, Some(last)))
    }

    /// The first byte and the length of this range of a payload of
    /// `size` bytes, or `None` when none of it is there (416).
    pub(super) fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From(first, _) if first >= size => None,
            ByteRange::From(first, last) => {
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                Some((first, last - first + 1))
            }
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => {
                let n = n.min(size);
                (n > 0).then_some((size - n, n))
            }
        }
    }
}

/// True for a connection's first byte that opens HTTP (`GET `, or
/// `HEAD ` for a shared file's head) rather than Lichat, whose updates
/// open with `(`.
pub(super) fn opens_http(first: u8) -> bool {
    matches!(first, b'G' | b'H')
}

/// A whole response that closes the connection.
pub(super) fn response(status: &str, content_type: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn plain(status: &str, extra: &str) -> Route {
    let body = format!("{status}\n");
    Route::Answer(response(status, "text/plain; charset=utf-8", &body, extra))
}

impl Request {
    /// Takes the next bytes of the request; `metrics` says whether `GET
    /// /metrics` is served.
    pub(super) fn feed(&mut self, bytes: &[u8], metrics: bool) -> Route {
        let before = self.buf.len();
        // Look for the blank line only where it could newly end.
        let take = bytes.len().min(MAX_REQUEST + 1 - before);
        self.buf.extend_from_slice(&bytes[..take]);
        let from = before.saturating_sub(3);
        let Some(end) = self.buf[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4)
        else {
            if self.buf.len() > MAX_REQUEST {
                return plain("431 Request Header Fields Too Large", "");
            }
            return Route::Partial;
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return plain("400 Bad Request", ""),
            Err(httparse::Error::TooManyHeaders) => {
                return plain("431 Request Header Fields Too Large", "");
            }
            Err(_) => return plain("400 Bad Request", ""),
        }
        if ws::wants_upgrade(req.headers) {
            return match ws::upgrade(&req) {
                Ok(answer) => Route::Upgrade {
                    answer,
                    // The head ended `end - before` bytes into these bytes.
                    rest: end - before,
                },
                Err(ws::Refusal::Version) => {
                    plain("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n")
                }
                Err(ws::Refusal::BadRequest(why)) => Route::Answer(response(
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    &format!("400 Bad Request: {why}\n"),
                    "",
                )),
            };
        }
        let path = req.path.unwrap_or("");
        let path = path.split('?').next().unwrap_or(path);
        if let Some(name) = path.strip_prefix(super::download::PATH)
            && matches!(req.method, Some("GET" | "HEAD"))
        {
            if !crate::store::links::is_payload_name(name) {
                return plain("404 Not Found", "");
            }
            let range = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("range"))
                .and_then(|h| ByteRange::parse(h.value));
            return Route::Link {
                name: name.to_owned(),
                body: req.method == Some("GET"),
                range,
            };
        }
        if req.method != Some("GET") {
            return plain("405 Method Not Allowed", "Allow: GET\r\n");
        }
        if metrics && path == "/metrics" {
            return Route::Metrics;
        }
        plain("404 Not Found", "")
    }

    /// Memory the request holds.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(route: &Route) -> String {
        match route {
            Route::Answer(a) => String::from_utf8_lossy(a)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn request_split_anywhere_is_routed_once_whole() {
        let text = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 1..text.len() {
            let mut r = Request::default();
            assert_eq!(r.feed(&text[..cut], true), Route::Partial, "cut {cut}");
            assert_eq!(r.feed(&text[cut..], true), Route::Metrics, "cut {cut}");
        }
    }

    #[test]
    fn metrics_only_when_on_else_404() {
        let mut r = Request::default();
        let route = r.feed(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false);
        assert_eq!(status(&route), "HTTP/1.1 404 Not Found");
        let mut r = Request::default();
        let route = r.feed(b"GET / HTTP/1.1\r\n\r\n", true);
        assert_eq!(status(&route), "HTTP/1.1 404 Not Found");
    }

    #[test]
    fn oversize_heads_and_too_many_headers_get_431() {
        let mut r = Request::default();
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_REQUEST));
        assert_eq!(
            status(&r.feed(&big, true)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        assert!(r.capacity() <= 2 * MAX_REQUEST + 64);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: y\r\n").bytes());
        }
        many.extend(b"\r\n");
        let mut r = Request::default();
        assert_eq!(
            status(&r.feed(&many, true)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let mut r = Request::default();
        assert_eq!(
            status(&r.feed(b"GET / HTTP/1.1\r\nbad header\r\n\r\n", true)),
            "HTTP/1.1 400 Bad Request"
        );
    }

    #[test]
    fn byte_ranges_parse_as_rfc_9110_says_and_resolve_against_the_size() {
        let p = |t: &str| ByteRange::parse(t.as_bytes());
        assert_eq!(p("bytes=0-99"), Some(ByteRange::From(0, Some(99))));
        assert_eq!(p("bytes=100-"), Some(ByteRange::From(100, None)));
        assert_eq!(p("bytes=-50"), Some(ByteRange::Suffix(50)));
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(p(ignored), None, "{ignored}");
        }
        assert_eq!(ByteRange::From(0, Some(99)).resolve(1000), Some((0, 100)));
        assert_eq!(
            ByteRange::From(990, Some(2000)).resolve(1000),
            Some((990, 10))
        );
        assert_eq!(ByteRange::From(1000, None).resolve(1000), None);
        assert_eq!(ByteRange::Suffix(50).resolve(1000), Some((950, 50)));
        assert_eq!(ByteRange::Suffix(5000).resolve(1000), Some((0, 1000)));
        assert_eq!(ByteRange::Suffix(0).resolve(1000), None);
        assert_eq!(ByteRange::Suffix(1).resolve(0), None);
    }

    #[test]
    fn upgrade_leaves_the_bytes_after_the_head_for_the_frames() {
        let head = "GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut r = Request::default();
        assert_eq!(r.feed(&head.as_bytes()[..10], false), Route::Partial);
        let mut rest = head.as_bytes()[10..].to_vec();
        rest.extend(b"\x81\x80abcd");
        match r.feed(&rest, false) {
            Route::Upgrade { answer, rest: at } => {
                assert!(answer.starts_with(b"HTTP/1.1 101"));
                assert_eq!(&rest[at..], b"\x81\x80abcd");
            }
            other => panic!("{other:?}"),
        }
        let mut r = Request::default();
        let v = head.replace("Version: 13", "Version: 7");
        assert_eq!(
            status(&r.feed(v.as_bytes(), false)),
            "HTTP/1.1 426 Upgrade Required"
        );
    }
}
