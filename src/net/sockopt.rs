//! The two socket options the loop sets that neither `std` nor `mio`
//! offers: a capped kernel send buffer, and an abortive close.

use std::io;
use std::os::fd::AsRawFd;

/// Bytes of kernel send buffer asked for each accepted socket (Linux
/// doubles it for its bookkeeping). The server's own write queue holds
/// what does not fit; a larger kernel buffer only adds to what a client
/// that stops reading costs, and to what the loop copies for it when the
/// kernel makes room in many such sockets at once.
pub const SEND_BUFFER: usize = 256 * 1024;

fn set<T>(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to a live `T` of `len` bytes for the call, and
    // the kernel validates the descriptor and the option.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Caps the socket's kernel send buffer at [`SEND_BUFFER`] (`SO_SNDBUF`;
/// this also turns off the kernel's growing of it).
pub fn cap_send_buffer(socket: &impl AsRawFd) -> io::Result<()> {
    let bytes = SEND_BUFFER as libc::c_int;
    set(socket, libc::SOL_SOCKET, libc::SO_SNDBUF, &bytes)
}

/// Makes closing the socket reset the connection (`SO_LINGER` with a zero
/// timeout): the kernel frees what is still queued at once instead of
/// keeping it, in an orphaned socket, for a peer that does not read.
pub fn reset_on_close(socket: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set(socket, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn get_int(socket: &impl AsRawFd, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: value and len are live and of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn send_buffer_is_capped() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let default = get_int(&server, libc::SO_SNDBUF);
        cap_send_buffer(&server).expect("SO_SNDBUF");
        let got = get_int(&server, libc::SO_SNDBUF);
        // Linux reports twice what was asked, or twice its maximum.
        assert_ne!(got, default);
        assert!(got as usize <= 2 * SEND_BUFFER, "{got}");
    }

    #[test]
    fn close_after_reset_on_close_resets_the_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        reset_on_close(&server).expect("SO_LINGER");
        drop(server);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let err = client
            .read(&mut buf)
            .expect_err("a reset, not an end of stream");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let _ = client.write(b"x");
    }
}
