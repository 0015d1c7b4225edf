//! The metrics `GET /metrics` answers with (`--metrics`), in Prometheus'
//! text format: connections by transport, users, channels, updates and
//! bytes in and out, deliveries, drops, and the store's commit latency.

use super::Server;
use super::conn::Phase;
use super::transport::Kind;
use crate::store::Ticket;
use std::collections::VecDeque;
use std::fmt::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Upper bounds of the commit latency buckets, in seconds.
const BUCKETS: [f64; 9] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];
/// Batches waiting for their commit that are timed at most.
const TIMED: usize = 1024;

/// Counters kept only with `--metrics`: the store's commit latency and
/// the updates the server sent.
#[derive(Default)]
pub(super) struct Metrics {
    /// Batches submitted and not yet committed, with when.
    submitted: VecDeque<(Ticket, Instant)>,
    /// Commits per bucket of [`BUCKETS`], and above the last.
    buckets: [u64; BUCKETS.len() + 1],
    commits: u64,
    commit_seconds: f64,
    /// Updates sent, a broadcast counted once.
    pub(super) updates_out: u64,
    /// The last buffer counted, so its recipients do not count it again.
    last: Option<Rc<[u8]>>,
}

impl Metrics {
    /// A batch went to the store's writer.
    pub(super) fn submitted(&mut self, ticket: Ticket) {
        if self.submitted.len() == TIMED {
            self.submitted.pop_front();
        }
        self.submitted.push_back((ticket, Instant::now()));
    }

    /// Batches up to `ticket` are committed.
    pub(super) fn committed(&mut self, ticket: Ticket) {
        while let Some(&(t, at)) = self.submitted.front()
            && t <= ticket
        {
            self.submitted.pop_front();
            self.observe(at.elapsed());
        }
    }

    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.commits += 1;
        self.commit_seconds += secs;
    }

    /// A buffer is queued on a connection: its updates count once.
    pub(super) fn sent(&mut self, bytes: &Rc<[u8]>) {
        if self.last.as_ref().is_some_and(|l| Rc::ptr_eq(l, bytes)) {
            return;
        }
        let mut rest = &bytes[..];
        while let Some(i) = crate::wire::find_nul(rest) {
            self.updates_out += 1;
            rest = &rest[i + 1..];
        }
        self.last = Some(bytes.clone());
    }

    /// Lets the last buffer go (at the end of a turn).
    pub(super) fn end_turn(&mut self) {
        self.last = None;
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

impl Server {
    /// The metrics as Prometheus text (served over HTTP, which comes with
    /// the `websocket` feature).
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(super) fn render_metrics(&self) -> String {
        let mut by_kind = [0usize; 5];
        for (_, conn) in self.conns.iter() {
            if conn.phase == Phase::Dead {
                continue;
            }
            let kind = conn.transport.as_deref().map_or(Kind::Tcp, |t| t.kind());
            by_kind[kind as usize] += 1;
        }
        let mut out = String::with_capacity(2048);
        out.push_str(
            "# HELP lichat_connections Open connections by transport (setup: TLS handshake, \
             first bytes or HTTP request).\n# TYPE lichat_connections gauge\n",
        );
        for (kind, name) in [
            (Kind::Tcp, "tcp"),
            (Kind::WebSocket, "websocket"),
            (Kind::Tls, "tls"),
            (Kind::WebSocketTls, "websocket-tls"),
            (Kind::Other, "setup"),
        ] {
            let _ = writeln!(
                out,
                "lichat_connections{{transport=\"{name}\"}} {}",
                by_kind[kind as usize]
            );
        }
        metric(
            &mut out,
            "lichat_users",
            "gauge",
            "Users present, the server's own included.",
            self.engine.user_count(),
        );
        metric(
            &mut out,
            "lichat_channels",
            "gauge",
            "Channels, the primary channel included.",
            self.engine.channel_count(),
        );
        metric(
            &mut out,
            "lichat_backfill_bytes",
            "gauge",
            "Bytes all channels keep for backfill, against --backfill-total-bytes.",
            self.engine.backfill_held().1,
        );
        metric(
            &mut out,
            "lichat_link_bytes",
            "gauge",
            "Bytes shared files take against --max-link-bytes (shirakumo-link).",
            self.engine.link_bytes(),
        );
        metric(
            &mut out,
            "lichat_updates_received_total",
            "counter",
            "Updates read from connections and handed to the engine.",
            self.updates_in,
        );
        let m = self.metrics.as_deref();
        metric(
            &mut out,
            "lichat_updates_sent_total",
            "counter",
            "Updates sent, a broadcast counted once.",
            m.map_or(0, |m| m.updates_out),
        );
        metric(
            &mut out,
            "lichat_deliveries_total",
            "counter",
            "Buffers queued on connections: a broadcast counts once per recipient.",
            self.deliveries,
        );
        metric(
            &mut out,
            "lichat_bytes_received_total",
            "counter",
            "Bytes read from connections (plaintext under TLS).",
            self.bytes_in,
        );
        metric(
            &mut out,
            "lichat_bytes_sent_total",
            "counter",
            "Bytes written to connections (plaintext under TLS).",
            self.bytes_out,
        );
        metric(
            &mut out,
            "lichat_write_queue_drops_total",
            "counter",
            "Clients dropped for letting their write queue pass --max-write-queue.",
            self.write_queue_drops,
        );
        metric(
            &mut out,
            "lichat_flood_drops_total",
            "counter",
            "Updates dropped by flood protection.",
            self.engine.flood_drops(),
        );
        metric(
            &mut out,
            "lichat_tls_handshakes",
            "gauge",
            "TLS handshakes in flight.",
            self.tls_handshakes,
        );
        out.push_str(
            "# HELP lichat_store_commit_seconds Time from handing a batch of changes to the \
             store to its commit.\n# TYPE lichat_store_commit_seconds histogram\n",
        );
        let (buckets, count, sum) = m.map_or(([0; BUCKETS.len() + 1], 0, 0.0), |m| {
            (m.buckets, m.commits, m.commit_seconds)
        });
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += buckets[i];
            let _ = writeln!(
                out,
                "lichat_store_commit_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "lichat_store_commit_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             lichat_store_commit_seconds_sum {sum}\nlichat_store_commit_seconds_count {count}"
        );
        metric(
            &mut out,
            "lichat_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            self.started.elapsed().as_secs(),
        );
        out
    }
}
