//! `GET /link/NAME`: serving a payload of `shirakumo.mess` §12 over HTTP
//! with the content type and file name it was shared with. The file is
//! streamed: a chunk is read when the connection's queue has drained, so a
//! download holds one chunk of memory however large the file, and one
//! turn of the loop writes at most [`TURN_BUDGET`] of it. A client that
//! stops reading is dropped after [`STALL_DEADLINE`] seconds without
//! progress.

use super::conn::{Phase, Reason};
use super::http::ByteRange;
use super::transport::{Framing, Transport};
use super::{Server, http};
use crate::engine::{ConnId, Time};
use crate::store::links::{Payload, open_payload};
use log::{debug, warn};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;
/// Bytes of one download written in one turn of the loop at most.
const TURN_BUDGET: u64 = 1 << 20;
/// Seconds a download may go without the client taking a chunk.
pub(super) const STALL_DEADLINE: u64 = 30;

/// A payload being sent.
pub(super) struct Download {
    file: File,
    /// Bytes of the payload not yet read from the file.
    left: u64,
    /// Bytes read in the current turn.
    this_turn: u64,
}

/// The URL path payloads are served under; their name follows.
pub const PATH: &str = "/link/";

/// The response head for a payload, or for `part` of it (its first
/// byte and length).
fn head(p: &Payload, part: Option<(u64, u64)>) -> String {
    let mut head = match part {
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            p.content_type, p.size
        ),
        Some((first, len)) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\
             Content-Range: bytes {first}-{}/{}\r\n",
            p.content_type,
            first + len - 1,
            p.size
        ),
    };
    head.push_str("Accept-Ranges: bytes\r\n");
    if let Some(name) = &p.filename {
        head.push_str(&content_disposition(name));
    }
    // The payload is a user's upload: never run it as a page of this
    // origin, and never let a browser guess another type.
    head.push_str(
        "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: sandbox\r\n\
         Cache-Control: public, max-age=31536000, immutable\r\n\
         Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
    );
    head
}

/// `Content-Disposition: inline` with the file name (RFC 6266): a plain
/// ASCII `filename` for old clients and the exact one as `filename*`
/// (RFC 8187, UTF-8, percent-encoded).
pub(super) fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut exact = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    format!("Content-Disposition: inline; filename=\"{plain}\"; filename*=UTF-8''{exact}\r\n")
}

impl Server {
    /// A `GET` (or `HEAD`, `body` false) of the payload `name`, or of the
    /// byte range asked for: answers 404 if there is none, 416 if the range
    /// is not in it, else sends the head and starts streaming the file.
    pub(super) fn serve_payload(
        &mut self,
        key: ConnId,
        name: &str,
        (body, range): (bool, Option<ByteRange>),
        now: Time,
        tick: u64,
    ) {
        let found = match &self.data_dir {
            Some(dir) => open_payload(dir, name),
            None => Ok(None),
        };
        let payload = match found {
            Ok(Some(p)) => p,
            Ok(None) => {
                let answer = http::response(
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "404 Not Found\n",
                    "",
                );
                self.answer_and_close(key, answer, now, tick);
                return;
            }
            Err(e) => {
                warn!("cannot read the shared file {name}: {e}");
                let answer = http::response(
                    "500 Internal Server Error",
                    "text/plain; charset=utf-8",
                    "500 Internal Server Error\n",
                    "",
                );
                self.answer_and_close(key, answer, now, tick);
                return;
            }
        };
        let mut payload = payload;
        let part = match range.map(|r| r.resolve(payload.size)) {
            None => None,
            Some(Some(part)) => Some(part),
            Some(None) => {
                let answer = http::response(
                    "416 Range Not Satisfiable",
                    "text/plain; charset=utf-8",
                    "416 Range Not Satisfiable\n",
                    &format!("Content-Range: bytes */{}\r\n", payload.size),
                );
                self.answer_and_close(key, answer, now, tick);
                return;
            }
        };
        if let Some((first, _)) = part
            && let Err(e) = payload.file.seek(SeekFrom::Current(first as i64))
        {
            warn!("cannot read the shared file {name}: {e}");
            self.lost(key, now, tick, Reason::Error);
            return;
        }
        let len = part.map_or(payload.size, |p| p.1);
        debug!(
            "connection {key}: serving {name} ({len} of {} bytes)",
            payload.size
        );
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.queue.push(Rc::from(head(&payload, part).into_bytes()));
        let left = if body { len } else { 0 };
        if let Some(t) = conn.transport.as_deref_mut() {
            t.framing = Framing::Download(Download {
                file: payload.file,
                left,
                this_turn: 0,
            });
        }
        // Not a Lichat connection: the engine's timeouts are not for it.
        self.engine.closed(key, now, &mut self.outbox);
        self.apply_outbox(tick);
        self.rearm_stall(key, tick);
        self.mark_dirty(key);
    }

    fn rearm_stall(&mut self, key: ConnId, tick: u64) {
        let Some(t) = self
            .conns
            .get_mut(key)
            .and_then(|c| c.transport.as_deref_mut())
        else {
            return;
        };
        if let Some(old) = t.deadline.take() {
            self.setup_wheel.cancel(old);
        }
        t.deadline = Some(self.setup_wheel.insert(tick + STALL_DEADLINE + 1, key));
    }

    /// A download's queue has drained: queues the next chunk (true), or
    /// ends the response once all is sent, or leaves the rest for the next
    /// turn when this one's budget is spent.
    pub(super) fn refill(&mut self, key: ConnId, now: Time, tick: u64) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.phase != Phase::Open {
            return false;
        }
        let Some(Framing::Download(d)) = conn.transport.as_deref_mut().map(|t| &mut t.framing)
        else {
            return false;
        };
        if d.left == 0 {
            if let Some(t) = conn.transport.as_deref_mut() {
                t.framing = Framing::Done;
            }
            self.lost(key, now, tick, Reason::Answered);
            return false;
        }
        if d.this_turn >= TURN_BUDGET {
            d.this_turn = 0;
            self.refills.push(key);
            return false;
        }
        let want = (d.left as usize).min(CHUNK);
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match d.file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("connection {key}: reading a shared file failed: {e}");
                    break;
                }
            }
        }
        if got < want {
            // The file is shorter than its head said (or unreadable): the
            // response cannot be completed.
            self.lost(key, now, tick, Reason::Error);
            return false;
        }
        d.left -= got as u64;
        d.this_turn += got as u64;
        conn.queue.push(Rc::from(buf));
        self.rearm_stall(key, tick);
        true
    }

    /// Downloads that used up their budget last turn go on.
    pub(super) fn resume_downloads(&mut self) {
        let refills = std::mem::take(&mut self.refills);
        for &key in &refills {
            self.mark_dirty(key);
        }
        self.refills = refills;
        self.refills.clear();
    }
}

impl Transport {
    /// True while a payload is being sent.
    pub(super) fn downloading(&self) -> bool {
        matches!(self.framing, Framing::Download(_))
    }
}
