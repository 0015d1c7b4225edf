//! Random bytes from the operating system, for what must be unguessable:
//! password salts (§5.2) and anonymous channel names (§2.4.2).

/// `bytes` random bytes (at most 16) as lower-case hex, or `None` when the
/// operating system has no randomness to give.
pub(crate) fn random_hex(bytes: usize) -> Option<String> {
    let mut buf = [0u8; 16];
    let buf = &mut buf[..bytes.min(16)];
    getrandom::fill(buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh 16-byte salt, or `None` when the operating system has no
/// randomness to give.
pub(crate) fn random_salt() -> Option<[u8; 16]> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).ok()?;
    Some(salt)
}
