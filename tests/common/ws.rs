//! A small WebSocket client for the tests: the upgrade, masked frames out,
//! the server's frames in; over any stream (TCP or TLS).

use super::WAIT;
use lichat_tcp_server::wire::{Object, read_object};
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

/// The server's answer to an upgrade request.
pub struct Answer {
    /// The status line.
    pub status: String,
    /// The header lines, as sent.
    pub headers: Vec<String>,
}

impl Answer {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A frame from the server.
#[derive(Debug)]
pub struct Frame {
    /// FIN set.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A WebSocket client over `S`.
pub struct Ws<S> {
    /// The stream.
    pub stream: S,
    buf: Vec<u8>,
}

/// The key every test uses (RFC 6455's example).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request, with `Sec-WebSocket-Protocol: protocols` if given.
pub fn request(protocols: Option<&str>) -> String {
    let mut r = format!(
        "GET /lichat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocols {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r
}

impl<S: Read + Write> Ws<S> {
    /// Wraps a stream; nothing is sent.
    pub fn new(stream: S) -> Ws<S> {
        Ws {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().expect("flush");
    }

    /// Sends `request` and reads the HTTP answer's head.
    pub fn upgrade_with(&mut self, request: &str) -> Answer {
        self.send_raw(request.as_bytes());
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                let text = String::from_utf8(head).expect("an HTTP head in text");
                let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
                let status = lines.next().unwrap_or("").to_owned();
                return Answer {
                    status,
                    headers: lines.map(str::to_owned).collect(),
                };
            }
            assert!(self.fill(), "closed before the HTTP answer: {:?}", self.buf);
        }
    }

    /// Upgrades, offering `protocols`; asserts the 101.
    pub fn upgrade(&mut self, protocols: Option<&str>) -> Answer {
        let a = self.upgrade_with(&request(protocols));
        assert!(a.status.starts_with("HTTP/1.1 101 "), "{}", a.status);
        a
    }

    /// Reads more; false at the end of stream.
    fn fill(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    assert!(Instant::now() < deadline, "nothing from the server in time");
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, first: u8, payload: &[u8]) {
        self.send_raw(&frame(first, payload));
    }

    /// Sends one update's text as a text message, with its NUL.
    pub fn send(&mut self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.send_frame(0x81, &bytes);
    }

    /// The next frame, or `None` at the end of stream.
    pub fn try_frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 2 {
                let b1 = self.buf[1];
                assert_eq!(b1 & 0x80, 0, "the server never masks");
                let (len, at) = match b1 & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().expect("8 bytes")) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let b0 = self.buf[0];
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some(Frame {
                        fin: b0 & 0x80 != 0,
                        opcode: b0 & 0x0f,
                        payload,
                    });
                }
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "a partial frame: {:?}", self.buf);
                return None;
            }
        }
    }

    /// The next frame; fails the test at the end of stream.
    pub fn frame(&mut self) -> Frame {
        self.try_frame().expect("a frame, not the end of stream")
    }

    /// The next update: one text message holding one update and its NUL.
    pub fn recv(&mut self) -> Object {
        let f = self.frame();
        assert!(f.fin && f.opcode == 1, "a whole text message: {f:?}");
        let text = &f.payload;
        assert_eq!(text.last(), Some(&0), "the update's NUL ends the message");
        assert_eq!(
            text.iter().filter(|&&b| b == 0).count(),
            1,
            "one update per message"
        );
        read_object(&text[..text.len() - 1]).expect("a readable update")
    }

    /// Skips updates until one of class `name`.
    pub fn recv_class(&mut self, name: &str) -> Object {
        loop {
            let o = self.recv();
            if super::class(&o) == name {
                return o;
            }
        }
    }

    /// Reads until a close frame; returns its code, and asserts the
    /// connection then ends.
    pub fn recv_close(&mut self) -> u16 {
        loop {
            let f = self.frame();
            if f.opcode == 8 {
                assert!(f.payload.len() >= 2, "a close code: {f:?}");
                let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                assert!(self.try_frame().is_none(), "nothing after the close frame");
                return code;
            }
        }
    }

    /// §4.1 handshake over the WebSocket as `name`; consumes its replies.
    pub fn login(&mut self, name: &str) {
        self.send(&format!(
            "(connect :id 1 :clock {} :from \"{name}\" :version \"2.0\")",
            super::clock()
        ));
        let reply = self.recv();
        assert_eq!(super::class(&reply), "connect", "{reply:?}");
        self.recv_class("message");
    }
}

/// A masked client frame.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
