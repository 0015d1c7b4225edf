//! Load benchmark against the real server binary over 127.0.0.1:
//!
//! 1. fan-out: one channel of 1000 members, 10 of them sending as fast as
//!    the window allows; deliveries per second counted at every member;
//! 2. latency: 100 messages per second into the same channel for 1 s of
//!    warm-up and 5 s measured; p50 and p99 from send to receipt, measured
//!    at every 10th member (the server still writes to all 1000);
//! 3. memory: the server's RSS with 10 000 idle connections that each
//!    completed `connect`;
//! 4. register: 100 clients register at once, in 5 rounds, with durability
//!    on (each reply waits for its commit); registrations per second, and
//!    the latency another pair of clients sees meanwhile at 500 messages/s;
//! 5. floor: phase 2 against a bare relay instead of the server; then no
//!    server at all, one thread writing a 130-byte update to 1000 loopback
//!    TCP sockets, the least time a single-threaded fan-out to 1000 members
//!    can take on this machine (for reading phase 2);
//! 6. slowdrop: 50 members of a channel that never read are dropped at the
//!    write-queue limit (4 MiB) while a sender pushes 2 KB messages into
//!    it; the latency another member sees, and when the drops happen.
//!
//! Bounded in connections and time; stops by itself. Needs about 10 100
//! file descriptors (`ulimit -n 20000`). Run: `cargo bench --bench load`.
//! `LOAD_BLOCKS=100` has that many of the 1000 members keep a block list
//! (shirakumo-block) that does not concern the senders.
//! `LOAD_PHASES=fanout,latency,memory,register,floor,slowdrop` picks phases
//! (`LOAD_SLOWDROP_RATE`, 2000 messages/s, and `LOAD_SLOWDROP_BURST`, 8
//! messages a write, set phase 6's traffic). `LOAD_SERVER=PATH` runs that
//! server binary instead of this build's, `LOAD_SERVER_ARGS` adds options
//! to its command line. The server runs on CPU 0
//! and the generator on CPU 1 (`taskset`; `LOAD_PIN=0` turns it off). In the
//! latency phase the generator reads every `LOAD_SAMPLE`th member (10) and
//! naps `LOAD_NAP_US` (500) between polls; `LOAD_SPIN=1` busy-polls instead.
//!
//! Latency is reported twice: until the update reached the member's socket
//! (the kernel's software receive timestamp, `SO_TIMESTAMPING`), which is
//! the server's part, and until the generator's read returned, which adds
//! the generator's own polling delay. The floor phase runs phase 2 against
//! a bare relay, this binary with `LOAD_RELAY=1`, to show what any
//! single-threaded server pays on this machine.

use lichat_tcp_server::wire::read_object;
use mio::{Events, Interest, Poll, Token};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEMBERS: usize = 1000;
const SENDERS: usize = 10;
const IDLE: usize = 10_000;
const CHANNEL: &str = "load";
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
/// Messages allowed in flight (sent but not yet delivered everywhere).
const WINDOW: u64 = 400;
/// Messages one sender writes per write call.
const BATCH: usize = 8;
/// Between polls in the latency phase the generator sleeps up to this long
/// rather than waiting in epoll, so the server's sends need not wake it.
const NAP_US: u64 = 500;
/// How often the latency phase drains the members it does not measure.
const DRAIN_EVERY: Duration = Duration::from_millis(10);
/// The latency phase reads every this many-th member.
const LATENCY_SAMPLE: usize = 10;
const UNIVERSAL: u64 = 2_208_988_800;

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

/// A command for `program`, pinned to the server's CPU when pinning is on.
fn pinned(program: &std::ffi::OsStr) -> Command {
    match pinning() {
        Some((server_cpu, _)) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &server_cpu.to_string()]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl ServerProcess {
    fn start(extra: &[&str]) -> ServerProcess {
        let dir = std::env::temp_dir().join(format!("lichat-load-{}", std::process::id()));
        // `LOAD_SERVER=path` runs another build, e.g. to compare two.
        let server = std::env::var_os("LOAD_SERVER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_lichat-tcp-server").into());
        let mut cmd = pinned(&server);
        cmd.args([
            "--port",
            "0",
            "--hostname",
            "127.0.0.1",
            "--name",
            "LoadServer",
        ])
        .args(["--log-level", "info", "--connection-limit", "20000"])
        .args(["--ping-interval", "3600", "--idle-timeout", "7200"])
        .args(["--flood-limit", "1000000000"])
        .arg("--data-dir")
        .arg(&dir)
        .args(extra);
        // All clients come from 127.0.0.1; a build from before the
        // per-address limit (`LOAD_SERVER`) has no such option.
        if std::env::var_os("LOAD_SERVER").is_none() {
            cmd.args(["--max-connections-per-ip", "0", "--ws-port", "0"]);
        }
        // `LOAD_SERVER_ARGS="--backfill-count 0"` adds options, e.g. to
        // compare a feature off and on.
        if let Ok(more) = std::env::var("LOAD_SERVER_ARGS") {
            cmd.args(more.split_whitespace());
        }
        Self::spawn(cmd)
    }

    /// This benchmark's own binary as a bare relay (see `relay_main`).
    fn relay() -> ServerProcess {
        let me = std::env::current_exe().expect("the bench binary's path");
        let mut cmd = pinned(me.as_os_str());
        cmd.env("LOAD_RELAY", "1");
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> ServerProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.trim().parse().ok();
                break;
            }
        }
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                // Connections opening and closing are logged at info; only
                // problems are worth showing.
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = addr.expect("the server reports its address");
        ServerProcess { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status is readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS is present")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + UNIVERSAL
}

/// Opens connections named `prefix{i}` for each `i` in `range`; each sends `connect` and,
/// if given, joins `channel`. Returns once every connection has seen its
/// handshake (and join) reply.
fn open_clients(
    addr: SocketAddr,
    prefix: &str,
    range: std::ops::Range<usize>,
    channel: Option<&str>,
) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(range.len());
    let batch = 250;
    let mut start = range.start;
    while start < range.end {
        let end = (start + batch).min(range.end);
        let mut streams = Vec::with_capacity(end - start);
        for i in start..end {
            let mut s = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => panic!("connection {i} failed: {e} (is `ulimit -n` at least 20000?)"),
            };
            s.set_nodelay(true).expect("nodelay");
            let mut text = format!(
                "(connect :id 1 :clock {} :from \"{prefix}{i}\" :version \"2.0\")\0",
                clock()
            );
            if let Some(ch) = channel {
                text.push_str(&format!(
                    "(join :id 2 :clock {} :from \"{prefix}{i}\" :channel \"{ch}\")\0",
                    clock()
                ));
            }
            s.write_all(text.as_bytes()).expect("send handshake");
            streams.push(s);
        }
        for (k, s) in streams.iter_mut().enumerate() {
            let name = format!("{prefix}{}", start + k);
            wait_for(s, |class, from, ch| match channel {
                None => class == "connect",
                Some(c) => class == "join" && from == name && ch == c,
            });
        }
        all.extend(streams);
        start = end;
    }
    all
}

/// Reads updates from a blocking stream until `want(class, from, channel)`.
fn wait_for(s: &mut TcpStream, want: impl Fn(&str, &str, &str) -> bool) {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.iter().position(|&b| b == 0) {
            let text: Vec<u8> = buf.drain(..=end).collect();
            if std::env::var_os("LOAD_DEBUG").is_some() {
                eprintln!("setup: {}", String::from_utf8_lossy(&text));
            }
            if let Ok(o) = read_object(&text[..end]) {
                let get = |k: &str| {
                    o.fields
                        .iter()
                        .find(|(key, _)| key.name() == k)
                        .and_then(|(_, v)| v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                let class = o.class.name().to_owned();
                if class.contains("failure") || class == "username-taken" {
                    panic!("handshake failed: {}", String::from_utf8_lossy(&text));
                }
                if want(&class, &get("from"), &get("channel")) {
                    return;
                }
            }
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => panic!(
                "read during setup: {e}; unread: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        };
        assert!(n > 0, "server closed a connection during setup");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Called with the text of each message received.
type TextSink<'a> = dyn FnMut(&[u8]) + 'a;

struct Member {
    stream: mio::net::TcpStream,
    tail: Vec<u8>,
    out: Vec<u8>,
    out_off: usize,
}

/// Latencies in microseconds, one pair per message received by a measured
/// member: until the generator's read returned, and until the bytes reached
/// the member's socket (the kernel's receive timestamp).
#[derive(Default)]
struct Latencies {
    read: Vec<u32>,
    kernel: Vec<u32>,
}

/// Wall-clock microseconds: the same clock as the kernel's receive
/// timestamps.
fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Asks the kernel to stamp each arriving segment with the time it reached
/// the socket.
fn enable_receive_stamps(stream: &mio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    // SAFETY: a valid socket and a c_uint option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_TIMESTAMPING: {}", std::io::Error::last_os_error());
}

/// `recvmsg` into `buf`; also returns the software receive timestamp of the
/// newest segment read, in wall-clock microseconds, when the kernel gives one.
fn recv_stamped(
    stream: &mio::net::TcpStream,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<u64>)> {
    use std::os::fd::AsRawFd;
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: the iovec and control buffers outlive the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPING {
                let ts = libc::CMSG_DATA(c).cast::<libc::timespec>().read_unaligned();
                if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                    stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

struct Fanout {
    poll: Poll,
    members: Vec<Member>,
    scratch: Vec<u8>,
    /// Only members whose index is a multiple of this are read; the others'
    /// bytes wait in their kernel buffers (1 reads everyone).
    sample: usize,
    /// `LOAD_DUMP=1`: every latency sample goes to stderr as `sample <sent
    /// micros> <member> <arrival us> <read us>`, for looking at single
    /// messages.
    dump: bool,
}

impl Fanout {
    fn new(streams: Vec<TcpStream>) -> Fanout {
        let poll = Poll::new().expect("poll");
        let mut members = Vec::with_capacity(streams.len());
        for (i, s) in streams.into_iter().enumerate() {
            s.set_nonblocking(true).expect("nonblocking");
            let mut stream = mio::net::TcpStream::from_std(s);
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .expect("register");
            members.push(Member {
                stream,
                tail: Vec::new(),
                out: Vec::new(),
                out_off: 0,
            });
        }
        Fanout {
            poll,
            members,
            scratch: vec![0; 256 * 1024],
            sample: 1,
            dump: std::env::var_os("LOAD_DUMP").is_some(),
        }
    }

    fn queue_message(&mut self, sender: usize, text: &str) {
        let m = &mut self.members[sender];
        let line = format!(
            "(message :id 3 :clock {} :from \"m{sender}\" :channel \"{CHANNEL}\" :text \"{text}\")\0",
            clock()
        );
        m.out.extend_from_slice(line.as_bytes());
    }

    fn flush(&mut self, who: usize) {
        let m = &mut self.members[who];
        while m.out_off < m.out.len() {
            match m.stream.write(&m.out[m.out_off..]) {
                Ok(n) => m.out_off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("sender {who}: write failed: {e}"),
            }
        }
        m.out.clear();
        m.out_off = 0;
    }

    /// Reads every readable member until it would block. Counts updates;
    /// with `latencies`, parses `:text "T<micros>"` of each message.
    fn pump(
        &mut self,
        events: &mut Events,
        timeout: Duration,
        mut latencies: Option<&mut Latencies>,
        mut on_text: Option<&mut TextSink<'_>>,
    ) -> u64 {
        self.poll.poll(events, Some(timeout)).expect("poll");
        let mut count = 0;
        for ev in events.iter() {
            let i = ev.token().0;
            if ev.is_writable() {
                self.flush(i);
            }
            if !ev.is_readable() || i % self.sample != 0 {
                continue;
            }
            loop {
                let m = &mut self.members[i];
                let got = if latencies.is_some() {
                    recv_stamped(&m.stream, &mut self.scratch)
                } else {
                    m.stream.read(&mut self.scratch).map(|n| (n, None))
                };
                match got {
                    Ok((0, _)) => panic!("member {i}: the server closed the connection"),
                    Ok((n, stamp)) => {
                        // A short read drained the socket; with edge-triggered
                        // polling, later data brings a new event, so the extra
                        // read that would return WouldBlock is skipped.
                        let drained = n < self.scratch.len();
                        let data = &self.scratch[..n];
                        if latencies.is_none() && on_text.is_none() {
                            count += data.iter().filter(|&&b| b == 0).count() as u64;
                            if drained {
                                break;
                            }
                            continue;
                        }
                        let now = wall_micros();
                        // The stamp is the newest segment's; an update that
                        // shares a read with a later one is given the later
                        // arrival time, which can only overstate its latency.
                        let arrived = stamp.unwrap_or(now);
                        let mut rest = data;
                        while let Some(end) = rest.iter().position(|&b| b == 0) {
                            let seg: &[u8] = if m.tail.is_empty() {
                                &rest[..end]
                            } else {
                                m.tail.extend_from_slice(&rest[..end]);
                                &m.tail
                            };
                            count += 1;
                            if let Some(t) = text_of(seg) {
                                if let Some(l) = latencies.as_deref_mut()
                                    && let Some(sent) = t.strip_prefix(b"T").and_then(parse_u64)
                                {
                                    l.read.push(now.saturating_sub(sent) as u32);
                                    l.kernel.push(arrived.saturating_sub(sent) as u32);
                                    if self.dump {
                                        eprintln!(
                                            "sample {sent} {i} {} {}",
                                            arrived.saturating_sub(sent),
                                            now.saturating_sub(sent)
                                        );
                                    }
                                }
                                if let Some(f) = on_text.as_deref_mut() {
                                    f(t);
                                }
                            }
                            m.tail.clear();
                            rest = &rest[end + 1..];
                        }
                        m.tail.extend_from_slice(rest);
                        if drained {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("member {i}: read failed: {e}"),
                }
            }
        }
        count
    }

    /// Waits until every member has received a message with `marker`.
    fn barrier(&mut self, marker: &str) {
        self.queue_message(0, marker);
        self.flush(0);
        let mut events = Events::with_capacity(1024);
        let mut seen = 0usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = marker.as_bytes().to_vec();
        while seen < self.members.len() {
            assert!(
                Instant::now() < deadline,
                "barrier {marker}: {seen} of {} members",
                self.members.len()
            );
            let mut on = |t: &[u8]| {
                if t == target.as_slice() {
                    seen += 1;
                }
            };
            self.pump(&mut events, Duration::from_millis(10), None, Some(&mut on));
        }
    }

    fn throughput(&mut self) -> f64 {
        let mut events = Events::with_capacity(4096);
        let mut sent: u64 = 0;
        let mut delivered: u64 = 0;
        let members = self.members.len() as u64;
        let begin = Instant::now();
        let mut measured_from: Option<(Instant, u64)> = None;
        loop {
            let elapsed = begin.elapsed();
            if measured_from.is_none() && elapsed >= WARMUP {
                measured_from = Some((Instant::now(), delivered));
            }
            if elapsed >= WARMUP + MEASURE {
                break;
            }
            let in_flight = sent * members - delivered.min(sent * members);
            if in_flight < WINDOW * members {
                for s in 0..SENDERS {
                    for _ in 0..BATCH {
                        self.queue_message(s, "xxxxxxxxxxxxxxxx");
                        sent += 1;
                    }
                    self.flush(s);
                }
            }
            delivered += self.pump(&mut events, Duration::from_millis(1), None, None);
        }
        let (t0, d0) = measured_from.expect("warm-up ended");
        let rate = (delivered - d0) as f64 / t0.elapsed().as_secs_f64();
        // Let the backlog drain so the next phase starts clean.
        self.barrier("drained-after-throughput");
        rate
    }

    /// Sends `per_second` messages into the channel for the measuring time
    /// and returns the latencies (microseconds) seen by every `sample`th
    /// member. Reading all 1000 sockets on this machine would make the load
    /// generator, not the server, the bottleneck: each read costs a
    /// loopback ACK. The server still writes every message to all members;
    /// the unread bytes wait in kernel buffers until the drain afterwards.
    /// Reads and discards whatever the unmeasured members have received.
    fn drain_unsampled(&mut self) {
        for i in 0..self.members.len() {
            if i % self.sample == 0 {
                continue;
            }
            let m = &mut self.members[i];
            loop {
                match m.stream.read(&mut self.scratch) {
                    Ok(0) => panic!("member {i}: the server closed the connection"),
                    Ok(n) if n < self.scratch.len() => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("member {i}: {e}"),
                }
            }
        }
    }

    /// Returns the latencies, the number of measured messages, and the CPU
    /// time `server_pid`'s main thread used while they were sent.
    fn latency(
        &mut self,
        per_second: u64,
        sample: usize,
        server_pid: u32,
    ) -> (Latencies, u64, Duration) {
        self.sample = sample;
        let mut events = Events::with_capacity(4096);
        let mut latencies = Latencies {
            read: Vec::with_capacity(1 << 20),
            kernel: Vec::with_capacity(1 << 20),
        };
        for m in self.members.iter().step_by(sample) {
            enable_receive_stamps(&m.stream);
        }
        let interval = Duration::from_micros(1_000_000 / per_second);
        let begin = Instant::now();
        let mut next = begin;
        let mut sent = 0u64;
        let mut k = 0usize;
        let spin = std::env::var_os("LOAD_SPIN").is_some();
        let nap = match std::env::var("LOAD_NAP_US") {
            Ok(v) => v.parse().ok().filter(|&us| us > 0),
            Err(_) => Some(NAP_US),
        }
        .map(Duration::from_micros);
        // The members drained without measuring leave the poll set: on
        // loopback, the wake-up bookkeeping of every socket in it runs
        // inside the server's sends, which real clients on other machines
        // would not cost it.
        let quiet: Vec<usize> = (SENDERS..self.members.len())
            .filter(|i| i % sample != 0)
            .collect();
        for &i in &quiet {
            self.poll
                .registry()
                .deregister(&mut self.members[i].stream)
                .expect("deregister");
        }
        let mut next_drain = begin;
        // The first second is sent but not measured (`W` instead of `T`):
        // the first messages after a quiet spell find cold caches.
        let until = WARMUP + MEASURE;
        let mut cpu_from = None;
        let mut cpu_used = Duration::ZERO;
        while begin.elapsed() < until + Duration::from_millis(200) {
            if Instant::now() >= next_drain {
                // Members that are not measured still read what they get,
                // as real clients do; otherwise their full receive queues
                // make the kernel prune and collapse them on every arrival,
                // on the server's CPU.
                self.drain_unsampled();
                next_drain += DRAIN_EVERY;
            }
            if Instant::now() >= next && begin.elapsed() < until {
                let t = wall_micros();
                let sender = k % SENDERS;
                let tag = if begin.elapsed() < WARMUP { 'W' } else { 'T' };
                if tag == 'T' && cpu_from.is_none() {
                    cpu_from = Some(cpu_time(server_pid));
                }
                self.queue_message(sender, &format!("{tag}{t}"));
                self.flush(sender);
                if tag == 'T' {
                    sent += 1;
                }
                k += 1;
                next += interval;
            }
            let wait = if spin {
                Duration::ZERO
            } else {
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(1))
            };
            if let Some(nap) = nap {
                // Sleep instead of waiting in epoll: the server's sends
                // then find no waiter to wake.
                std::thread::sleep(wait.min(nap));
                self.pump(&mut events, Duration::ZERO, Some(&mut latencies), None);
            } else {
                self.pump(&mut events, wait, Some(&mut latencies), None);
            }
        }
        if let Some(from) = cpu_from {
            cpu_used = cpu_time(server_pid).saturating_sub(from);
        }
        for &i in &quiet {
            self.poll
                .registry()
                .register(
                    &mut self.members[i].stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .expect("register again");
        }
        self.sample = 1;
        self.barrier("drained-after-latency");
        (latencies, sent, cpu_used)
    }
}

fn text_of(update: &[u8]) -> Option<&[u8]> {
    let key = b":text \"";
    let at = update.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &update[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// CPU time the main thread of `pid` has used (`/proc/PID/schedstat`, in
/// nanoseconds; the main thread is the one that runs the poll loop).
fn cpu_time(pid: u32) -> Duration {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Prints what phase 2 measured against `who`.
fn report_latency(who: &str, lat: Latencies, sent: u64, cpu: Duration) {
    print_cpu(who, sent, cpu);
    println!("messages: {sent}, samples: {}", lat.read.len());
    print_latencies("arrival at the member's socket", lat.kernel);
    print_latencies("read by the member", lat.read);
}

fn print_cpu(who: &str, messages: u64, cpu: Duration) {
    let per = cpu.as_secs_f64() / messages.max(1) as f64;
    println!(
        "{who} CPU while measuring: {:.0} ms for {messages} messages, {:.2} ms a message, {:.2} us a delivery",
        cpu.as_secs_f64() * 1000.0,
        per * 1000.0,
        per * 1e6 / MEMBERS as f64
    );
}

fn print_latencies(what: &str, mut lat: Vec<u32>) {
    lat.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    println!(
        "{what}: min {:.3} ms, p10 {:.3} ms, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(lat.first().copied().unwrap_or(0)),
        ms(percentile(&lat, 0.10)),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or(0))
    );
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A connection of the bare relay.
struct RelayPeer {
    stream: mio::net::TcpStream,
    input: Vec<u8>,
    /// Bytes a short write left behind, written before anything newer.
    output: Vec<u8>,
    open: bool,
}

impl RelayPeer {
    fn send(&mut self, bytes: &[u8]) {
        if !self.open {
            return;
        }
        if !self.output.is_empty() {
            self.output.extend_from_slice(bytes);
            return;
        }
        let mut done = 0;
        while done < bytes.len() {
            match self.stream.write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.open = false;
                    return;
                }
            }
        }
        self.output.extend_from_slice(&bytes[done..]);
    }

    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.output);
        self.send(&pending);
    }
}

/// The least any single-threaded server must do for phase 2: one mio loop
/// that forwards every `message` update it reads, unparsed, to every
/// connection in the order they connected, sender included. No protocol,
/// no allocation per delivery, no bookkeeping. Runs in its own process
/// (`LOAD_RELAY=1`), pinned like the server, until it is killed.
fn relay_main() {
    let mut listener =
        mio::net::TcpListener::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let mut poll = Poll::new().expect("poll");
    const LISTENER: Token = Token(usize::MAX);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register");
    eprintln!(
        "relay listening on {}",
        listener.local_addr().expect("address")
    );
    let mut peers: Vec<RelayPeer> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut updates: Vec<u8> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            assert_eq!(e.kind(), ErrorKind::Interrupted, "poll: {e}");
            continue;
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true).expect("nodelay");
                    poll.registry()
                        .register(
                            &mut stream,
                            Token(peers.len()),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .expect("register");
                    peers.push(RelayPeer {
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        open: true,
                    });
                }
                continue;
            }
            let peer = &mut peers[ev.token().0];
            if ev.is_writable() {
                peer.flush();
            }
            while peer.open {
                match peer.stream.read(&mut scratch) {
                    Ok(0) => peer.open = false,
                    Ok(n) => peer.input.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => peer.open = false,
                }
            }
            let mut start = 0;
            while let Some(end) = peer.input[start..].iter().position(|&b| b == 0) {
                let update = &peer.input[start..=start + end];
                if update.starts_with(b"(message") {
                    updates.extend_from_slice(update);
                }
                start += end + 1;
            }
            peer.input.drain(..start);
        }
        if !updates.is_empty() {
            let mut start = 0;
            while let Some(end) = updates[start..].iter().position(|&b| b == 0) {
                for peer in &mut peers {
                    peer.send(&updates[start..=start + end]);
                }
                start += end + 1;
            }
            updates.clear();
        }
    }
}

fn main() {
    if std::env::var_os("LOAD_RELAY").is_some() {
        relay_main();
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let (soft, _) = nofile_limit();
    if soft < (IDLE as u64 + 200) {
        eprintln!(
            "warning: ulimit -n is {soft}; the idle phase needs about {} (ulimit -n 20000)",
            IDLE + 200
        );
    }

    let phases = std::env::var("LOAD_PHASES")
        .unwrap_or_else(|_| "fanout,latency,memory,register,floor,slowdrop".into());
    if phases.contains("fanout") || phases.contains("latency") {
        channel_phases(&phases);
    }
    if phases.contains("register") {
        register_phase();
    }
    if phases.contains("floor") {
        floor_phase();
    }
    if phases.contains("slowdrop") {
        slowdrop_phase();
    }
    if !phases.contains("memory") {
        return;
    }
    println!("== memory: {IDLE} idle connections ==");
    let server = ServerProcess::start(&[]);
    std::thread::sleep(Duration::from_millis(200));
    let base = server.rss_kib();
    let begin = Instant::now();
    // Every arrival is a join in the primary channel for everyone already
    // there (§4.1.13): the clients read those as they come, as connected
    // clients do, so that what is measured is idle connections, not
    // undelivered joins.
    let mut idle: Vec<TcpStream> = Vec::with_capacity(IDLE);
    let mut drained = 0;
    for start in (0..IDLE).step_by(250) {
        idle.extend(open_clients(
            server.addr,
            "idle",
            start..(start + 250).min(IDLE),
            None,
        ));
        drained += drain_once(&mut idle);
    }
    println!(
        "setup: {IDLE} connections in {:.2} s",
        begin.elapsed().as_secs_f64()
    );
    drained += drain_until_quiet(&mut idle);
    println!(
        "read {:.1} MB of joins to the primary channel in {:.2} s",
        drained as f64 / 1e6,
        begin.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    let with = server.rss_kib();
    println!(
        "server RSS: {base} KiB at start, {with} KiB with {IDLE} idle connections: {:.2} KiB per connection",
        (with.saturating_sub(base)) as f64 / IDLE as f64
    );
    drop(idle);
}

/// Reads what every stream has, without waiting; returns the bytes read.
fn drain_once(streams: &mut [TcpStream]) -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let mut got = 0u64;
    for s in streams.iter_mut() {
        s.set_nonblocking(true).expect("nonblocking");
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read while draining: {e}"),
            }
        }
    }
    got
}

/// Reads every stream until none has had anything for 300 ms (at most
/// 60 s); returns the bytes read.
fn drain_until_quiet(streams: &mut [TcpStream]) -> u64 {
    let mut total = 0u64;
    let mut quiet_since = Instant::now();
    let began = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300)
        && began.elapsed() < Duration::from_secs(60)
    {
        let got = drain_once(streams);
        if got > 0 {
            total += got;
            quiet_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    total
}

/// `LOAD_BLOCKS=N`: that many members keep a block list (shirakumo §19).
fn block_count() -> usize {
    std::env::var("LOAD_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MEMBERS - SENDERS - 1)
}

/// The last `n` members register and block a member that never sends, so
/// every delivery still happens but passes the block check.
fn add_blocks(streams: &mut [TcpStream], n: usize) {
    let began = Instant::now();
    let quiet = MEMBERS - n - 1;
    for (i, s) in streams.iter_mut().enumerate().skip(MEMBERS - n) {
        s.write_all(
            format!(
                "(register :id 3 :clock {} :from \"m{i}\" :password \"load-bench\")\0",
                clock()
            )
            .as_bytes(),
        )
        .expect("register");
        wait_for(s, |class, _, _| class == "register");
        s.write_all(
            format!(
                "(block :id 4 :clock {} :from \"m{i}\" :target \"m{quiet}\")\0",
                clock()
            )
            .as_bytes(),
        )
        .expect("block");
        wait_for(s, |class, _, _| class == "block");
    }
    println!(
        "setup: {n} members block m{quiet} (who never sends), in {:.2} s",
        began.elapsed().as_secs_f64()
    );
}

fn latency_sample() -> usize {
    std::env::var("LOAD_SAMPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LATENCY_SAMPLE)
        .max(1)
}

/// Phases 1 and 2: fan-out throughput and latency in one 1000-member channel.
fn channel_phases(phases: &str) {
    println!("== fan-out: {MEMBERS} members in one channel, {SENDERS} senders ==");
    let server = ServerProcess::start(&["--max-write-queue", "67108864"]);
    let mut streams = open_clients(server.addr, "m", 0..1, None);
    {
        let s = &mut streams[0];
        s.write_all(
            format!(
                "(create :id 2 :clock {} :from \"m0\" :channel \"{CHANNEL}\")\0",
                clock()
            )
            .as_bytes(),
        )
        .expect("create");
        wait_for(s, |class, _, ch| class == "join" && ch == CHANNEL);
    }
    let setup = Instant::now();
    streams.extend(open_clients(server.addr, "m", 1..MEMBERS, Some(CHANNEL)));
    println!(
        "setup: {MEMBERS} members joined in {:.2} s",
        setup.elapsed().as_secs_f64()
    );
    let blocks = block_count();
    if blocks > 0 {
        add_blocks(&mut streams, blocks);
    }
    let mut fan = Fanout::new(streams);
    fan.barrier("ready");
    let rss_members = server.rss_kib();
    let rate = if phases.contains("fanout") {
        fan.throughput()
    } else {
        0.0
    };
    println!(
        "deliveries/s: {:.0} (window {WINDOW} messages, batches of {BATCH})",
        rate
    );

    let sample = latency_sample();
    println!(
        "== latency: 100 messages/s into the channel, measured at every {LATENCY_SAMPLE}th of {MEMBERS} members =="
    );
    let (lat, sent, cpu) = fan.latency(100, sample, server.child.id());
    report_latency("server", lat, sent, cpu);
    println!("server RSS with {MEMBERS} members: {rss_members} KiB");
    drop(fan);
    drop(server);
}

/// Phase 5: the kernel's floor for a single-threaded fan-out on loopback.
fn floor_phase() {
    relay_floor();
    send_floor();
}

/// Phase 2 again with the bare relay in place of the server.
fn relay_floor() {
    println!(
        "== floor: phase 2 against a bare relay (one mio loop forwarding raw bytes, no protocol) =="
    );
    let relay = ServerProcess::relay();
    let streams: Vec<TcpStream> = (0..MEMBERS)
        .map(|i| {
            let s = TcpStream::connect(relay.addr)
                .unwrap_or_else(|e| panic!("connection {i} to the relay failed: {e}"));
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect();
    let mut fan = Fanout::new(streams);
    fan.barrier("ready");
    let (lat, sent, cpu) = fan.latency(100, latency_sample(), relay.child.id());
    report_latency("relay", lat, sent, cpu);
}

/// One thread writing to 1000 sockets, timed per round.
fn send_floor() {
    println!("== floor: one thread writes 130 bytes to each of {MEMBERS} loopback sockets ==");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut readers = Vec::with_capacity(MEMBERS);
    let mut writers = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        let r = TcpStream::connect(addr).expect("connect");
        let (w, _) = listener.accept().expect("accept");
        w.set_nodelay(true).expect("nodelay");
        r.set_nonblocking(true).expect("nonblocking");
        readers.push(r);
        writers.push(w);
    }
    let update = [b'x'; 130];
    let mut scratch = vec![0u8; 1 << 16];
    let mut rounds = Vec::new();
    for round in 0..220 {
        let begin = Instant::now();
        for w in writers.iter_mut() {
            w.write_all(&update).expect("write");
        }
        if round >= 20 {
            rounds.push(begin.elapsed().as_micros() as u32);
        }
        for r in readers.iter_mut() {
            while let Ok(n) = r.read(&mut scratch) {
                if n == 0 {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    rounds.sort_unstable();
    println!(
        "one update to all {MEMBERS}: p50 {:.2} ms, p99 {:.2} ms ({:.1} us per send)",
        f64::from(percentile(&rounds, 0.50)) / 1000.0,
        f64::from(percentile(&rounds, 0.99)) / 1000.0,
        f64::from(percentile(&rounds, 0.50)) / MEMBERS as f64
    );
}

const REGISTRANTS: usize = 100;
const ROUNDS: usize = 5;

/// Reads one update from a blocking stream into `buf` (NUL removed).
fn read_update(s: &mut TcpStream, pending: &mut Vec<u8>) -> Vec<u8> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = pending.iter().position(|&b| b == 0) {
            let mut update: Vec<u8> = pending.drain(..=end).collect();
            update.pop();
            return update;
        }
        let n = s.read(&mut chunk).expect("the server answers in time");
        assert!(n > 0, "the server closed a connection");
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Phase 4: registrations with durability on, and what others see meanwhile.
fn register_phase() {
    println!("== register: {REGISTRANTS} clients register at once, {ROUNDS} rounds ==");
    let server = ServerProcess::start(&[]);
    let mut creator = open_clients(server.addr, "owner", 0..1, None);
    creator[0]
        .write_all(
            format!(
                "(create :id 2 :clock {} :from \"owner0\" :channel \"watch\")\0",
                clock()
            )
            .as_bytes(),
        )
        .expect("create");
    wait_for(&mut creator[0], |class, _, ch| {
        class == "join" && ch == "watch"
    });
    let watchers = open_clients(server.addr, "watch", 0..2, Some("watch"));
    let registrants = open_clients(server.addr, "reg", 0..REGISTRANTS, None);
    let epoch = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bursting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watchers = watchers.into_iter();
    let mut sender = watchers.next().expect("two watchers");
    let mut receiver = watchers.next().expect("two watchers");
    let send_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut id = 10u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                id += 1;
                let sent = epoch.elapsed().as_nanos();
                let text = format!(
                    "(message :id {id} :clock {} :from \"watch0\" :channel \"watch\" :text \"{sent}\")\0",
                    clock()
                );
                sender.write_all(text.as_bytes()).expect("watcher sends");
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let receive_thread = {
        let stop = stop.clone();
        let bursting = bursting.clone();
        std::thread::spawn(move || {
            receiver
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            let (mut quiet, mut busy) = (Vec::new(), Vec::new());
            let mut pending = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let update = read_update(&mut receiver, &mut pending);
                let Some(sent) = text_of(&update).and_then(parse_u64) else {
                    continue;
                };
                let micros = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent) / 1000;
                let micros = u32::try_from(micros).unwrap_or(u32::MAX);
                if bursting.load(std::sync::atomic::Ordering::Relaxed) {
                    busy.push(micros);
                } else {
                    quiet.push(micros);
                }
            }
            (quiet, busy)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut total = Duration::ZERO;
    let mut replies: Vec<u32> = Vec::new();
    for round in 0..ROUNDS {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(REGISTRANTS));
        bursting.store(true, std::sync::atomic::Ordering::Relaxed);
        let begin = Instant::now();
        let handles: Vec<_> = registrants
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.try_clone().expect("clone socket");
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(30)))
                        .expect("timeout");
                    let text = format!(
                        "(register :id {} :clock {} :from \"reg{i}\" :password \"secret-{round}-{i}\")\0",
                        100 + round,
                        clock()
                    );
                    barrier.wait();
                    let sent = Instant::now();
                    s.write_all(text.as_bytes()).expect("register sent");
                    let mut pending = Vec::new();
                    loop {
                        let update = read_update(&mut s, &mut pending);
                        if update.starts_with(b"(register ") {
                            return sent.elapsed().as_micros() as u32;
                        }
                        assert!(
                            !update.starts_with(b"(registration-rejected"),
                            "registration refused"
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            replies.push(h.join().expect("registrant"));
        }
        let took = begin.elapsed();
        bursting.store(false, std::sync::atomic::Ordering::Relaxed);
        total += took;
        println!(
            "round {round}: {REGISTRANTS} registrations confirmed in {:.1} ms",
            took.as_secs_f64() * 1000.0
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    send_thread.join().expect("sender");
    let (mut quiet, mut busy) = receive_thread.join().expect("receiver");
    replies.sort_unstable();
    quiet.sort_unstable();
    busy.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    println!(
        "registrations/s with durability on: {:.0} ({} in {:.2} s of bursts)",
        (REGISTRANTS * ROUNDS) as f64 / total.as_secs_f64(),
        REGISTRANTS * ROUNDS,
        total.as_secs_f64()
    );
    println!(
        "register reply latency: p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&replies, 0.50)),
        ms(percentile(&replies, 0.99))
    );
    println!(
        "other clients' message latency during bursts: p50 {:.2} ms, p99 {:.2} ms ({} samples); otherwise p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&busy, 0.50)),
        ms(percentile(&busy, 0.99)),
        busy.len(),
        ms(percentile(&quiet, 0.50)),
        ms(percentile(&quiet, 0.99))
    );
}

const STALLED: usize = 50;
const SLOW_CHANNEL: &str = "slow";
/// Bytes of text in each message of the slowdrop phase.
const BIG_TEXT: usize = 2048;
/// The slowdrop phase gives up after this long.
const SLOWDROP_LIMIT: Duration = Duration::from_secs(40);
/// How long the slowdrop phase goes on after the last drop.
const AFTER_DROPS: Duration = Duration::from_secs(1);

/// What the measured member of phase 6 saw: (micros since the phase
/// began when sent, latency in micros) per message, and when each stalled
/// member's `leave` arrived (micros since the phase began).
#[derive(Default)]
struct SlowdropSeen {
    messages: Vec<(u64, u32)>,
    leaves: Vec<u64>,
}

/// Phase 6: members that never read are dropped at the write-queue limit
/// while big messages go out; the latency another member sees meanwhile.
fn slowdrop_phase() {
    let rate: u64 = std::env::var("LOAD_SLOWDROP_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .max(1);
    let burst: u64 = std::env::var("LOAD_SLOWDROP_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .max(1);
    println!(
        "== slowdrop: {STALLED} members that never read, {rate} messages/s of {BIG_TEXT} bytes in bursts of {burst}, one member measured =="
    );
    let server = ServerProcess::start(&["--max-update-size", "65536"]);
    let mut sender = open_clients(server.addr, "sd", 0..1, None)
        .pop()
        .expect("one sender");
    sender
        .write_all(
            format!(
                "(create :id 2 :clock {} :from \"sd0\" :channel \"{SLOW_CHANNEL}\")\0",
                clock()
            )
            .as_bytes(),
        )
        .expect("create");
    wait_for(&mut sender, |class, _, ch| {
        class == "join" && ch == SLOW_CHANNEL
    });
    let stalled = open_clients(server.addr, "stall", 0..STALLED, Some(SLOW_CHANNEL));
    let mut meter = open_clients(server.addr, "meter", 0..1, Some(SLOW_CHANNEL))
        .pop()
        .expect("one meter");
    let epoch = Instant::now();
    let micros = move || epoch.elapsed().as_micros() as u64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The sender reads its own copies, or it would be dropped too.
    let mut sender_in = sender.try_clone().expect("clone");
    let drain = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 1 << 16];
        while let Ok(n) = sender_in.read(&mut chunk) {
            if n == 0 {
                break;
            }
        }
    });
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            meter
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let mut seen = SlowdropSeen::default();
            let mut pending: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            let mut last_drop: Option<Instant> = None;
            loop {
                if last_drop.is_some_and(|t| t.elapsed() >= AFTER_DROPS)
                    || epoch.elapsed() >= SLOWDROP_LIMIT
                {
                    break;
                }
                let n = match meter.read(&mut chunk) {
                    Ok(0) => panic!("the measured member was dropped"),
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        continue;
                    }
                    Err(e) => panic!("measured member: {e}"),
                };
                let now = micros();
                pending.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(end) = pending[start..].iter().position(|&b| b == 0) {
                    let update = &pending[start..start + end];
                    if update.starts_with(b"(message") {
                        if let Some(sent) = text_of(update)
                            .and_then(|t| t.strip_prefix(b"T"))
                            .and_then(|t| t.split(|&b| b == b'-').next())
                            .and_then(parse_u64)
                        {
                            seen.messages.push((sent, now.saturating_sub(sent) as u32));
                        }
                    } else if update.starts_with(b"(leave")
                        && update.windows(6).any(|w| w == b"\"stall")
                    {
                        seen.leaves.push(now);
                        if seen.leaves.len() == STALLED {
                            last_drop = Some(Instant::now());
                        }
                    }
                    start += end + 1;
                }
                pending.drain(..start);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            seen
        })
    };
    // Bursts of messages in one write: the server reads a burst in one
    // turn and queues it for every member, so the members that never read
    // cross the limit in the same turn.
    let interval = Duration::from_nanos(1_000_000_000 * burst / rate);
    let mut next = Instant::now();
    let mut sent = 0u64;
    let mut out = Vec::new();
    let cpu_from = cpu_time(server.child.id());
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += interval;
        out.clear();
        for _ in 0..burst {
            let stamp = format!("T{}-", micros());
            let text = format!("{stamp}{}", "x".repeat(BIG_TEXT - stamp.len()));
            out.extend_from_slice(
                format!(
                    "(message :id 3 :clock {} :from \"sd0\" :channel \"{SLOW_CHANNEL}\" :text \"{text}\")\0",
                    clock()
                )
                .as_bytes(),
            );
        }
        sender.write_all(&out).expect("sender writes");
        sent += burst;
    }
    let cpu = cpu_time(server.child.id()).saturating_sub(cpu_from);
    let seen = reader.join().expect("reader");
    // A second after the last drop, while the dropped members' sockets are
    // still open on this side: what the kernel still holds for them.
    let (orphans, tcp_pages) = tcp_sockstat();
    let _ = sender.shutdown(std::net::Shutdown::Both);
    drain.join().expect("drain");
    drop(stalled);
    report_slowdrop(&seen, sent, cpu);
    println!(
        "a second after the last drop: {orphans} orphaned TCP sockets, {:.1} MiB of TCP buffers (system-wide)",
        tcp_pages as f64 * 4096.0 / f64::from(1 << 20)
    );
}

/// Orphaned TCP sockets (closed by their process, still sending) and the
/// pages of TCP buffers in use, from `/proc/net/sockstat`.
fn tcp_sockstat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let line = text.lines().find(|l| l.starts_with("TCP:")).unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    let value = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (value("orphan"), value("mem"))
}

fn report_slowdrop(seen: &SlowdropSeen, sent: u64, cpu: Duration) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "messages sent: {sent}, received by the measured member: {}; server CPU {:.0} ms",
        seen.messages.len(),
        cpu.as_secs_f64() * 1000.0
    );
    let (Some(&first), Some(&last)) = (seen.leaves.first(), seen.leaves.last()) else {
        println!("no member was dropped");
        return;
    };
    println!(
        "{} of {STALLED} dropped, the first at {:.3} s, the last at {:.3} s",
        seen.leaves.len(),
        first as f64 / 1e6,
        last as f64 / 1e6
    );
    // Messages sent from 100 ms before the first drop to 100 ms after the
    // last are the ones the drops can delay.
    let near = |sent: u64| sent + 100_000 >= first && sent <= last + 100_000;
    let mut around: Vec<u32> = Vec::new();
    let mut elsewhere: Vec<u32> = Vec::new();
    for &(sent, lat) in &seen.messages {
        if near(sent) {
            around.push(lat);
        } else {
            elsewhere.push(lat);
        }
    }
    if std::env::var_os("LOAD_DUMP").is_some() {
        for &(sent, lat) in &seen.messages {
            eprintln!("sample {sent} {lat}");
        }
    }
    let worst = seen
        .messages
        .iter()
        .max_by_key(|m| m.1)
        .copied()
        .unwrap_or((0, 0));
    println!(
        "worst latency {:.2} ms, for the message sent at {:.3} s",
        ms(u64::from(worst.1)),
        worst.0 as f64 / 1e6
    );
    print_latencies("latency around the drops", around);
    print_latencies("latency otherwise", elsewhere);
}

/// Unless `LOAD_PIN=0`, with `taskset` available: the server runs on CPU 0 and
/// the load generator on CPU 1, so that the scheduler does not run the
/// generator on the server's CPU each time a write wakes it (on one
/// machine, the wake-ups otherwise cost the server most of its time).
fn pinning() -> Option<(usize, usize)> {
    if std::env::var("LOAD_PIN").is_ok_and(|v| v == "0") {
        return None;
    }
    let ok = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some((0, 1))
}

fn nofile_limit() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let mut it = l.split_whitespace().skip(3);
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .unwrap_or((0, 0))
}
