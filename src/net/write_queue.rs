//! One connection's write queue: shared buffers waiting to be written, in
//! order, with how much of the first one is written already. A broadcast
//! queues the same buffer on every recipient; nothing is copied.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Buffers handed to one `writev`.
const MAX_IOV: usize = 64;

/// Buffers waiting to be written to one socket. The first is kept inline,
/// so a connection whose writes keep up (the usual case: each delivery is
/// written in the turn it is queued) never allocates for its queue and an
/// idle one holds no heap memory for it; only a backlog uses `rest`, which
/// is given back once it empties.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    front: Option<Rc<[u8]>>,
    /// What waits behind `front`; empty while `front` is `None`.
    rest: VecDeque<Rc<[u8]>>,
    /// Bytes of the front buffer already written.
    offset: usize,
    /// Bytes queued and not yet written.
    pending: usize,
}

impl WriteQueue {
    /// Queues a buffer behind the others.
    pub fn push(&mut self, bytes: Rc<[u8]>) {
        self.pending += bytes.len();
        if self.front.is_none() {
            self.front = Some(bytes);
        } else {
            self.rest.push_back(bytes);
        }
    }

    /// True when everything queued is written.
    pub fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// What waits beyond the buffer being written: its bytes, and the
    /// number of buffers.
    pub fn waiting(&self) -> (usize, usize) {
        let head = self.front.as_ref().map_or(0, |b| b.len() - self.offset);
        (self.pending - head, self.rest.len())
    }

    /// Writes what the socket takes, with as few calls as it can: until
    /// everything is written (`Ok(true)`) or the socket would block
    /// (`Ok(false)`). A write of 0 bytes is an error.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while let Some(front) = &self.front {
            // One buffer goes out with `send`, which skips the iovec import
            // and file-position lock that `writev` costs on every call.
            let written = if self.rest.is_empty() {
                socket.write(&front[self.offset..])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                slices[0] = IoSlice::new(&front[self.offset..]);
                let mut count = 1;
                for buf in self.rest.iter().take(MAX_IOV - 1) {
                    slices[count] = IoSlice::new(buf);
                    count += 1;
                }
                socket.write_vectored(&slices[..count])
            };
            match written {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        Ok(true)
    }

    /// `n` bytes from the front were written.
    fn consume(&mut self, mut n: usize) {
        self.pending -= n;
        while n > 0 {
            let Some(front) = &self.front else {
                break;
            };
            let rest = front.len() - self.offset;
            if n >= rest {
                n -= rest;
                self.front = self.rest.pop_front();
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    /// Drops everything queued and gives the memory back.
    pub fn clear(&mut self) {
        *self = WriteQueue::default();
    }

    /// True when the queue holds heap memory of its own (beyond the
    /// shared buffers): only while a backlog waits.
    #[cfg(test)]
    fn allocated(&self) -> bool {
        self.rest.capacity() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `per_call` bytes a call, then would
    /// block once `room` is used up.
    struct Socket {
        got: Vec<u8>,
        per_call: usize,
        room: usize,
        calls: usize,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.per_call - n).min(self.room);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                self.room -= take;
            }
            if n == 0 && self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn buf(text: &str) -> Rc<[u8]> {
        Rc::from(text.as_bytes())
    }

    #[test]
    fn partial_writes_resume_mid_buffer_in_order() {
        let mut q = WriteQueue::default();
        for t in ["hello ", "shared ", "world"] {
            q.push(buf(t));
        }
        assert_eq!(q.pending(), 18);
        let mut s = Socket {
            got: Vec::new(),
            per_call: 4,
            room: 9,
            calls: 0,
        };
        assert!(!q.write_to(&mut s).unwrap(), "blocks after 9 bytes");
        assert_eq!(s.got, b"hello sha");
        assert_eq!(q.pending(), 9);
        assert_eq!(q.waiting(), (5, 1), "rest of 'shared ' is being written");
        s.room = usize::MAX;
        assert!(q.write_to(&mut s).unwrap());
        assert_eq!(s.got, b"hello shared world");
        assert!(q.is_empty() && q.pending() == 0);
    }

    #[test]
    fn many_buffers_go_out_in_few_calls() {
        let mut q = WriteQueue::default();
        let shared = buf("0123456789");
        for _ in 0..128 {
            q.push(shared.clone());
        }
        let mut s = Socket {
            got: Vec::new(),
            per_call: usize::MAX,
            room: usize::MAX,
            calls: 0,
        };
        assert!(q.write_to(&mut s).unwrap());
        assert_eq!(s.got.len(), 1280);
        assert_eq!(s.calls, 2, "64 buffers a call");
    }

    #[test]
    fn a_queue_that_keeps_up_never_allocates_and_a_backlog_gives_its_room_back() {
        let mut q = WriteQueue::default();
        let mut s = Socket {
            got: Vec::new(),
            per_call: usize::MAX,
            room: usize::MAX,
            calls: 0,
        };
        for _ in 0..100 {
            q.push(buf("one delivery\0"));
            assert!(!q.allocated(), "one buffer waits inline");
            assert!(q.write_to(&mut s).unwrap());
        }
        s.room = 20;
        for _ in 0..10 {
            q.push(buf("a backlog\0"));
        }
        assert!(!q.write_to(&mut s).unwrap());
        assert!(q.allocated(), "a backlog waits behind the first buffer");
        s.room = usize::MAX;
        assert!(q.write_to(&mut s).unwrap());
        assert!(
            q.is_empty() && !q.allocated(),
            "written, the room goes back"
        );
        assert_eq!(s.got.len(), 100 * 13 + 10 * 10);
    }

    #[test]
    fn a_write_of_nothing_is_an_error() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut q = WriteQueue::default();
        q.push(buf("x"));
        assert_eq!(
            q.write_to(&mut Zero).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        q.clear();
        assert!(q.is_empty() && q.pending() == 0);
    }
}
