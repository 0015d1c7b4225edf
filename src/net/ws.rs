//! WebSocket framing (RFC 6455) as pure functions over bytes: the opening
//! handshake's answer, a streaming decoder of the client's frames, and the
//! server's frames. One Lichat update goes out per text message, its NUL
//! included (lichat-js reads one update per message and drops the NUL).
//!
//! The decoder never buffers a data frame: it unmasks the payload where it
//! lies and hands it on, so a connection costs the decoder's few fields
//! whatever the size of the messages it sends; only the payload of a control
//! frame (at most 125 bytes) is kept until the frame is whole.

use crate::protocol::payload::base64_encode;
use sha1::{Digest, Sha1};
use std::ops::Range;

/// RFC 6455 §1.3: appended to the client's key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The subprotocol answered when the client offers it (lichat-js does).
pub(super) const SUBPROTOCOL: &str = "lichat";

/// RFC 6455 §7.4.1 status codes the server sends.
pub(super) mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error: unmasked frame, bad opcode, bad control frame.
    pub const PROTOCOL: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
}

/// RFC 6455 §4.2.2 step 5.4: the `Sec-WebSocket-Accept` value for a key.
pub(super) fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64_encode(&sha.finalize())
}

/// Why an upgrade request is refused, with the HTTP answer it gets.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 400: a header the handshake needs is missing or wrong.
    BadRequest(&'static str),
    /// 426 with `Sec-WebSocket-Version: 13`: another protocol version.
    Version,
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Comma-separated tokens of every header called `name`, trimmed.
fn tokens<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> impl Iterator<Item = &'a [u8]> {
    header(headers, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii())
}

/// True when the request asks for a WebSocket upgrade (`Upgrade:
/// websocket`), whether or not the rest of its handshake is right.
pub(super) fn wants_upgrade(headers: &[httparse::Header<'_>]) -> bool {
    tokens(headers, "upgrade").any(|t| t.eq_ignore_ascii_case(b"websocket"))
}

/// RFC 6455 §4.2.1-§4.2.2: checks an upgrade request (method, version,
/// `Host`, `Upgrade`, `Connection`, key, `Sec-WebSocket-Version: 13`) and
/// returns the `101 Switching Protocols` answer. The subprotocol `lichat` is
/// named in it only when the client offered it.
pub(super) fn upgrade(req: &httparse::Request<'_, '_>) -> Result<Vec<u8>, Refusal> {
    if req.method != Some("GET") || req.version != Some(1) {
        return Err(Refusal::BadRequest("the handshake is a GET over HTTP/1.1"));
    }
    let headers = &*req.headers;
    if header(headers, "host").next().is_none() {
        return Err(Refusal::BadRequest("no Host header"));
    }
    if !tokens(headers, "connection").any(|t| t.eq_ignore_ascii_case(b"upgrade")) {
        return Err(Refusal::BadRequest("Connection does not name Upgrade"));
    }
    let mut keys = header(headers, "sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k.trim_ascii(),
        _ => return Err(Refusal::BadRequest("not exactly one Sec-WebSocket-Key")),
    };
    // §4.1: the key is 16 random bytes in base 64, 24 characters.
    let key_ok = key.len() == 24
        && std::str::from_utf8(key)
            .ok()
            .and_then(crate::protocol::payload::base64_len)
            == Some(16);
    if !key_ok {
        return Err(Refusal::BadRequest(
            "Sec-WebSocket-Key is not 16 bytes in base 64",
        ));
    }
    let mut versions = header(headers, "sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.trim_ascii() == b"13" => {}
        _ => return Err(Refusal::Version),
    }
    let lichat = tokens(headers, "sec-websocket-protocol").any(|t| t == SUBPROTOCOL.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if lichat {
        out.push_str("Sec-WebSocket-Protocol: lichat\r\n");
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// A frame header for a payload of `len` bytes, unmasked (§5.2: the
/// server never masks).
fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Frames the server's bytes: one text message per update, each with its
/// NUL; bytes after the last NUL (there are none from the engine) form a
/// message of their own.
pub(super) fn frame_updates(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = crate::wire::find_nul(rest).map_or(rest.len(), |i| i + 1);
        put_header(&mut out, OP_TEXT, end);
        out.extend_from_slice(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// A close frame with a status code (§5.5.1).
pub(super) fn close_frame(code: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_header(&mut out, OP_CLOSE, 2);
    out.extend_from_slice(&code.to_be_bytes());
    out
}

/// A pong answering a ping with this payload (§5.5.3).
pub(super) fn pong_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + payload.len());
    put_header(&mut out, OP_PONG, payload.len());
    out.extend_from_slice(payload);
    out
}

const OP_CONTINUATION: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

/// What the decoder found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// Unmasked payload of a data message, at this range of the input.
    Data(Range<usize>),
    /// The message whose data came last is complete.
    MessageEnd,
    /// A ping: answer with [`Decoder::control`] as the pong's payload.
    Ping,
    /// A close frame, with the status code to answer with.
    Close(u16),
    /// The peer broke the protocol: close with this code.
    Fail(u16),
}

/// Streaming decoder of a client's frames (§5.2-§5.6).
#[derive(Debug, Default)]
pub(super) struct Decoder {
    /// Header bytes collected so far.
    header: [u8; 14],
    have: u8,
    /// Payload bytes of the current frame not yet seen.
    left: u64,
    mask: [u8; 4],
    /// Offset into the mask of the next payload byte.
    phase: u8,
    opcode: u8,
    fin: bool,
    in_frame: bool,
    /// A data message is in progress (its first frame was seen), and
    /// whether it is text.
    message: Option<bool>,
    /// Bytes of the message in progress.
    message_len: u64,
    /// Bytes of an unfinished UTF-8 sequence at the end of the text so far.
    utf8: [u8; 4],
    utf8_have: u8,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// Message size limit in bytes.
    limit: u64,
    /// A failure or close was reported: nothing more is decoded.
    done: bool,
    /// The last frame of a message ended with its data: report the end.
    pending_end: bool,
}

impl Decoder {
    /// A decoder refusing messages over `limit` bytes with 1009.
    pub(super) fn new(limit: usize) -> Decoder {
        Decoder {
            limit: limit as u64,
            ..Decoder::default()
        }
    }

    /// The payload of the last ping.
    pub(super) fn control(&self) -> &[u8] {
        &self.control
    }

    /// Decodes from `input`: returns the bytes used and what they make, or
    /// `None` once everything given is used without an event. Data payload
    /// is unmasked in place.
    pub(super) fn next(&mut self, input: &mut [u8]) -> (usize, Option<Event>) {
        if self.done {
            return (input.len(), None);
        }
        if self.pending_end {
            self.pending_end = false;
            return (0, self.end_message());
        }
        let mut used = 0;
        loop {
            if !self.in_frame {
                // Collect the header: 2 bytes, then the length and the mask.
                while (self.have as usize) < self.header_len() {
                    let Some(&b) = input.get(used) else {
                        return (used, None);
                    };
                    self.header[self.have as usize] = b;
                    self.have += 1;
                    used += 1;
                    if self.have == 2
                        && let Some(code) = self.check_first_two()
                    {
                        return (used, Some(self.fail(code)));
                    }
                }
                if let Some(event) = self.start_frame() {
                    return (used, Some(event));
                }
                if self.left == 0
                    && let Some(event) = self.end_frame()
                {
                    return (used, Some(event));
                }
                continue;
            }
            if used == input.len() {
                return (used, None);
            }
            let take = (self.left.min((input.len() - used) as u64)) as usize;
            let range = used..used + take;
            for b in &mut input[range.clone()] {
                *b ^= self.mask[self.phase as usize];
                self.phase = (self.phase + 1) & 3;
            }
            self.left -= take as u64;
            used += take;
            if self.opcode >= OP_CLOSE {
                self.control.extend_from_slice(&input[range]);
                if self.left == 0
                    && let Some(event) = self.end_frame()
                {
                    return (used, Some(event));
                }
                continue;
            }
            if self.message == Some(true) && !self.check_utf8(&input[range.clone()]) {
                return (used, Some(self.fail(code::INVALID_DATA)));
            }
            if self.left == 0 {
                self.in_frame = false;
                self.have = 0;
                self.pending_end = self.fin;
            }
            return (used, Some(Event::Data(range)));
        }
    }

    fn fail(&mut self, code: u16) -> Event {
        self.done = true;
        Event::Fail(code)
    }

    /// The header's length as far as the bytes seen tell.
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let len = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + len + 4
    }

    /// §5.2, §5.5: flags, opcode and mask bit of the first two bytes.
    fn check_first_two(&self) -> Option<u16> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            // No extension was negotiated.
            return Some(code::PROTOCOL);
        }
        if b1 & 0x80 == 0 {
            // §5.1: a client masks every frame.
            return Some(code::PROTOCOL);
        }
        match opcode {
            OP_CONTINUATION if self.message.is_none() => Some(code::PROTOCOL),
            OP_TEXT | OP_BINARY if self.message.is_some() => Some(code::PROTOCOL),
            OP_CONTINUATION | OP_TEXT | OP_BINARY => None,
            OP_CLOSE | OP_PING | OP_PONG if !fin || b1 & 0x7f > 125 => Some(code::PROTOCOL),
            OP_CLOSE | OP_PING | OP_PONG => None,
            _ => Some(code::PROTOCOL),
        }
    }

    /// The header is whole: set up the frame's payload.
    fn start_frame(&mut self) -> Option<Event> {
        let h = &self.header;
        let short = h[1] & 0x7f;
        let (len, mask_at) = match short {
            126 => (u16::from_be_bytes([h[2], h[3]]) as u64, 4),
            127 => (
                u64::from_be_bytes(h[2..10].try_into().unwrap_or([0xff; 8])),
                10,
            ),
            n => (n as u64, 2),
        };
        self.mask.copy_from_slice(&h[mask_at..mask_at + 4]);
        self.phase = 0;
        self.opcode = h[0] & 0x0f;
        self.fin = h[0] & 0x80 != 0;
        self.left = len;
        self.in_frame = true;
        if self.opcode >= OP_CLOSE {
            self.control.clear();
            return None;
        }
        if len >> 63 != 0 {
            return Some(self.fail(code::PROTOCOL));
        }
        if self.message_len + len > self.limit {
            return Some(self.fail(code::TOO_BIG));
        }
        self.message_len += len;
        if self.opcode != OP_CONTINUATION {
            self.message = Some(self.opcode == OP_TEXT);
        }
        None
    }

    /// The frame's payload is all seen.
    fn end_frame(&mut self) -> Option<Event> {
        self.in_frame = false;
        self.have = 0;
        match self.opcode {
            OP_PING => Some(Event::Ping),
            OP_PONG => None,
            OP_CLOSE => {
                self.done = true;
                Some(match self.control.len() {
                    0 => Event::Close(code::NORMAL),
                    1 => Event::Fail(code::PROTOCOL),
                    _ => {
                        let code = u16::from_be_bytes([self.control[0], self.control[1]]);
                        if std::str::from_utf8(&self.control[2..]).is_err() {
                            Event::Fail(code::INVALID_DATA)
                        } else if valid_close_code(code) {
                            Event::Close(code)
                        } else {
                            Event::Fail(code::PROTOCOL)
                        }
                    }
                })
            }
            // A data frame whose payload was empty, or just ended.
            _ => self.fin.then(|| self.end_message()).flatten(),
        }
    }

    /// A data frame with FIN ended: the message is complete.
    fn end_message(&mut self) -> Option<Event> {
        let text = self.message == Some(true);
        self.message = None;
        self.message_len = 0;
        if text && self.utf8_have != 0 {
            return Some(self.fail(code::INVALID_DATA));
        }
        Some(Event::MessageEnd)
    }

    /// Whether the payload just seen (unmasked) is valid UTF-8, carrying an
    /// unfinished sequence over to the next piece (§8.1).
    fn check_utf8(&mut self, mut data: &[u8]) -> bool {
        if self.utf8_have > 0 {
            let width = match self.utf8[0] {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            while (self.utf8_have as usize) < width {
                let Some((&b, rest)) = data.split_first() else {
                    // Still unfinished; the bytes so far were checked as a
                    // possible prefix when they were kept.
                    return true;
                };
                self.utf8[self.utf8_have as usize] = b;
                self.utf8_have += 1;
                data = rest;
                if let Err(e) = std::str::from_utf8(&self.utf8[..self.utf8_have as usize])
                    && e.error_len().is_some()
                {
                    return false;
                }
            }
            self.utf8_have = 0;
        }
        match std::str::from_utf8(data) {
            Ok(_) => true,
            Err(e) if e.error_len().is_some() => false,
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.utf8[..tail.len()].copy_from_slice(tail);
                self.utf8_have = tail.len() as u8;
                true
            }
        }
    }
}

/// §7.4: codes a peer may send in a close frame.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
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

    /// Decodes `bytes` given `chunk` bytes at a time; collects the data
    /// and the other events in order.
    fn decode(limit: usize, bytes: &[u8], chunk: usize) -> (Vec<u8>, Vec<Event>) {
        let mut d = Decoder::new(limit);
        let mut data = Vec::new();
        let mut events = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            let mut piece = piece.to_vec();
            let mut at = 0;
            loop {
                let (used, event) = d.next(&mut piece[at..]);
                assert!(at + used <= piece.len());
                match event {
                    Some(Event::Data(r)) => {
                        data.extend_from_slice(&piece[at + r.start..at + r.end]);
                    }
                    Some(e) => events.push(e),
                    None => {
                        assert_eq!(at + used, piece.len(), "None only when all is used");
                        break;
                    }
                }
                at += used;
            }
        }
        (data, events)
    }

    #[test]
    fn accept_key_matches_the_rfc_example_4_2_2() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn masked_text_frame_is_unmasked_at_every_split_5_3() {
        let bytes = frame(0x81, b"(ping :id 1)\0", [1, 2, 3, 4]);
        for chunk in 1..=bytes.len() {
            let (data, events) = decode(1000, &bytes, chunk);
            assert_eq!(data, b"(ping :id 1)\0", "chunk {chunk}");
            assert_eq!(events, vec![Event::MessageEnd], "chunk {chunk}");
        }
    }

    #[test]
    fn fragments_are_reassembled_with_control_frames_between_5_4() {
        let mut bytes = frame(0x01, "(message :text \"h".as_bytes(), [9, 8, 7, 6]);
        bytes.extend(frame(0x89, b"hi", [5, 5, 5, 5]));
        bytes.extend(frame(0x00, "é".as_bytes(), [1, 1, 1, 1]));
        bytes.extend(frame(0x80, b"\")", [0, 0, 0, 0]));
        for chunk in [1, 2, 3, 7, bytes.len()] {
            let (data, events) = decode(1000, &bytes, chunk);
            assert_eq!(data, "(message :text \"hé\")".as_bytes());
            assert_eq!(events, vec![Event::Ping, Event::MessageEnd]);
        }
    }

    #[test]
    fn long_lengths_16_and_64_bit_5_2() {
        for len in [125usize, 126, 65535, 65536, 70000] {
            let payload = vec![b'a'; len];
            let bytes = frame(0x82, &payload, [3, 1, 4, 1]);
            let (data, events) = decode(1 << 20, &bytes, 4096);
            assert_eq!(data.len(), len);
            assert!(data.iter().all(|&b| b == b'a'));
            assert_eq!(events, vec![Event::MessageEnd]);
        }
    }

    #[test]
    fn unmasked_frame_fails_with_protocol_error_5_1() {
        let bytes = [0x81, 0x02, b'h', b'i'];
        let (_, events) = decode(1000, &bytes, 1);
        assert_eq!(events, vec![Event::Fail(code::PROTOCOL)]);
    }

    #[test]
    fn message_over_the_limit_fails_with_1009_before_its_payload_7_4_1() {
        let bytes = frame(0x81, &[b'x'; 200], [0; 4]);
        let mut d = Decoder::new(100);
        let mut input = bytes.clone();
        let (used, event) = d.next(&mut input);
        assert_eq!(event, Some(Event::Fail(code::TOO_BIG)));
        assert_eq!(used, 2 + 2 + 4, "only the header is read");
        // Fragments count together.
        let mut bytes = frame(0x01, &[b'x'; 60], [0; 4]);
        bytes.extend(frame(0x80, &[b'x'; 60], [0; 4]));
        let (data, events) = decode(100, &bytes, 1000);
        assert_eq!(data.len(), 60);
        assert_eq!(events, vec![Event::Fail(code::TOO_BIG)]);
    }

    #[test]
    fn bad_sequences_fail_with_protocol_error_5_4_5_5() {
        let cases: Vec<Vec<u8>> = vec![
            frame(0x80, b"x", [0; 4]),          // continuation without a message
            frame(0xc1, b"x", [0; 4]),          // RSV1 set
            frame(0x83, b"x", [0; 4]),          // reserved opcode
            frame(0x09, b"x", [0; 4]),          // fragmented ping
            frame(0x89, &[0; 126], [0; 4]),     // ping over 125 bytes
            frame(0x88, b"x", [0; 4]),          // close with one byte
            frame(0x88, &[0x03, 0xe4], [0; 4]), // close code 996
            [frame(0x01, b"a", [0; 4]), frame(0x81, b"b", [0; 4])].concat(),
        ];
        for bytes in cases {
            let (_, events) = decode(1000, &bytes, 1);
            assert_eq!(events, vec![Event::Fail(code::PROTOCOL)], "{bytes:x?}");
        }
    }

    #[test]
    fn invalid_utf8_in_text_fails_with_1007_even_split_8_1() {
        let mut bytes = frame(0x01, &[b'a', 0xe2, 0x82], [1, 2, 3, 4]);
        bytes.extend(frame(0x80, &[0xac], [4, 3, 2, 1]));
        let (data, events) = decode(1000, &bytes, 1);
        assert_eq!(data, "a€".as_bytes());
        assert_eq!(
            events,
            vec![Event::MessageEnd],
            "a sequence split over frames"
        );
        for bad in [&[0xff][..], &[0xe2, 0x28], &[0xe2, 0x82]] {
            let bytes = frame(0x81, bad, [0; 4]);
            let (_, events) = decode(1000, &bytes, 1);
            assert_eq!(events, vec![Event::Fail(code::INVALID_DATA)], "{bad:x?}");
        }
        // Binary messages are not checked.
        let (_, events) = decode(1000, &frame(0x82, &[0xff], [0; 4]), 1);
        assert_eq!(events, vec![Event::MessageEnd]);
    }

    #[test]
    fn close_frame_reports_the_peer_code_and_ends_decoding_5_5_1() {
        let mut bytes = frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e'], [7; 4]);
        bytes.extend(frame(0x81, b"ignored", [0; 4]));
        let (data, events) = decode(1000, &bytes, 3);
        assert!(data.is_empty());
        assert_eq!(events, vec![Event::Close(1000)]);
        let (_, events) = decode(1000, &frame(0x88, b"", [0; 4]), 1);
        assert_eq!(events, vec![Event::Close(code::NORMAL)]);
    }

    #[test]
    fn ping_payload_is_kept_for_the_pong_5_5_2() {
        let mut d = Decoder::new(10);
        let mut bytes = frame(0x89, b"abc", [1, 2, 3, 4]);
        let (used, event) = d.next(&mut bytes);
        assert_eq!((used, event), (bytes.len(), Some(Event::Ping)));
        assert_eq!(d.control(), b"abc");
        assert_eq!(pong_frame(d.control()), [0x8a, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn server_frames_one_text_message_per_update_with_its_nul_5_6() {
        let framed = frame_updates(b"(a)\0(bc)\0");
        assert_eq!(framed, b"\x81\x04(a)\0\x81\x05(bc)\0");
        let long = vec![b'x'; 300];
        let framed = frame_updates(&long);
        assert_eq!(&framed[..4], &[0x81, 126, 1, 44]);
        assert_eq!(framed.len(), 304);
        assert_eq!(close_frame(1009), [0x88, 2, 0x03, 0xf1]);
    }

    fn request(text: &str) -> Result<Vec<u8>, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(text.as_bytes()).expect("parses").is_complete());
        upgrade(&req)
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn upgrade_answers_the_subprotocol_only_when_offered_4_2_2() {
        let plain = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let answer = String::from_utf8(request(&plain).expect("accepted")).expect("text");
        assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
        assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!answer.contains("Sec-WebSocket-Protocol"), "{answer}");
        let offered = plain.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: chat, lichat\r\n\r\n",
        );
        let answer = String::from_utf8(request(&offered).expect("accepted")).expect("text");
        assert!(
            answer.contains("Sec-WebSocket-Protocol: lichat\r\n"),
            "{answer}"
        );
        let other = plain.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        let answer = String::from_utf8(request(&other).expect("accepted")).expect("text");
        assert!(!answer.contains("Sec-WebSocket-Protocol"), "{answer}");
    }

    #[test]
    fn malformed_upgrades_are_refused_4_2_1() {
        let good = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        assert!(request(&good).is_ok());
        for (from, to) in [
            ("Host: x\r\n", ""),
            ("Connection: Upgrade", "Connection: close"),
            (KEY, "c2hvcnQ="),
            ("HTTP/1.1", "HTTP/1.0"),
        ] {
            let bad = good.replace(from, to);
            assert!(
                matches!(request(&bad), Err(Refusal::BadRequest(_))),
                "{bad}"
            );
        }
        let v8 = good.replace("Version: 13", "Version: 8");
        assert_eq!(request(&v8), Err(Refusal::Version));
    }
}
