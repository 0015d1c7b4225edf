//! TLS with rustls, which is sans-IO: the connection's TLS state lives in
//! its slab entry, bytes from the socket go in with `read_tls`, plaintext
//! comes out of its reader, and the write queue's plaintext is moved into
//! it (up to a bound) and out to the socket with `write_tls`. The crypto
//! provider is ring: it builds with only a C compiler and keeps the binary
//! small.

use super::TlsFiles;
use super::write_queue::WriteQueue;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Bytes of TLS records (and of plaintext before the handshake ends) one
/// connection's TLS state may hold before the write queue stops feeding it;
/// what does not fit waits in the write queue, under `--max-write-queue`.
pub(super) const TLS_BUFFER: usize = 64 * 1024;

/// Reads the certificate chain and key and builds the server's TLS
/// settings. The error is one line naming the file at fault.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let shown = |p: &Path| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", shown(&files.cert)))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in the file",
            shown(&files.cert)
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("--tls-key {}: {e}", shown(&files.key)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "--tls-key {} does not go with --tls-cert {}: {e}",
                shown(&files.key),
                shown(&files.cert)
            )
        })?;
    // No TLS 1.3 session tickets. They would arrive after the handshake
    // as a record with no application data, and a client that reads its
    // non-blocking socket once select() says readable (pylichat) takes
    // the resulting "want read" for a lost connection. Lichat connections
    // are long-lived: resuming sessions saves little.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A new connection's TLS state.
pub(super) fn accept(
    config: &Arc<ServerConfig>,
) -> Result<rustls::ServerConnection, rustls::Error> {
    let mut tls = rustls::ServerConnection::new(config.clone())?;
    tls.set_buffer_limit(Some(TLS_BUFFER));
    Ok(tls)
}

/// What reading a TLS connection gave.
pub(super) enum Fill {
    /// Plaintext in the first bytes of the buffer.
    Bytes(usize),
    /// Nothing more until the socket is readable again.
    Blocked,
    /// The peer ended the stream (with or without `close_notify`).
    Eof,
    /// The socket failed.
    Failed(io::Error),
    /// The peer broke TLS; an alert may be queued for it.
    Refused(rustls::Error),
}

/// Fills `buf` with plaintext: what the TLS state holds, or else what the
/// socket has, decrypted.
pub(super) fn fill(
    tls: &mut rustls::ServerConnection,
    socket: &mut impl Read,
    buf: &mut [u8],
) -> Fill {
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return Fill::Eof,
            Ok(n) => return Fill::Bytes(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Fill::Eof,
            Err(e) => return Fill::Failed(e),
        }
        match tls.read_tls(socket) {
            Ok(0) => return Fill::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Fill::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Fill::Failed(e),
        }
        if let Err(e) = tls.process_new_packets() {
            return Fill::Refused(e);
        }
    }
}

/// The write queue's plaintext, fed to the TLS state while it has room.
struct Plaintext<'a>(&'a mut rustls::ServerConnection);

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.writer().write(buf)? {
            0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.0.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes TLS records to the socket and feeds the queue's plaintext in
/// behind them, until both are empty or the socket would block.
pub(super) fn flush(
    tls: &mut rustls::ServerConnection,
    queue: &mut WriteQueue,
    socket: &mut impl Write,
) -> io::Result<()> {
    loop {
        while tls.wants_write() {
            match tls.write_tls(socket) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if queue.is_empty() || tls.is_handshaking() {
            return Ok(());
        }
        let all = queue.write_to(&mut Plaintext(tls))?;
        if !all && !tls.wants_write() {
            return Ok(());
        }
    }
}
