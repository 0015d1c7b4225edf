//! Interoperability with the real Python client `pylichat`: two clients
//! create and join a channel and exchange messages. The interpreter comes
//! from [`common::pylichat_python`], which provisions a virtualenv under the
//! target directory on the first run.

mod common;

use std::ffi::OsStr;
use std::process::Command;

#[test]
fn two_pylichat_clients_create_join_and_exchange_messages() {
    let python = common::pylichat_python();
    let server = common::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_pylichat.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", python.display()));
    assert!(
        out.status.success(),
        "pylichat script failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log().join("\n")
    );
}

/// A scratch directory for one provisioning check, under the target's tmp.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("provision-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Asserts `why` is the one-line "what to install" failure, naming `cause`.
fn assert_says_what_to_install(why: &str, cause: &str) {
    assert!(!why.contains('\n'), "not one line: {why:?}");
    assert!(
        why.contains("install python3 and python3-venv")
            && why.contains("python3 -m pip install pylichat==1.4"),
        "does not say what to install: {why}"
    );
    assert!(why.contains(cause), "does not name {cause:?}: {why}");
}

#[test]
fn provisioning_without_python3_fails_with_one_line_naming_what_to_install() {
    let dir = scratch("no-python");
    let missing = dir.join("no-such-python3");
    let why = common::provision_pylichat(missing.as_os_str(), &dir.join("pyenv"))
        .expect_err("no interpreter, no virtualenv");
    assert_says_what_to_install(&why, "cannot run");
    assert!(!dir.join("pyenv").exists(), "left a virtualenv behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provisioning_with_a_python3_lacking_venv_fails_with_one_line_naming_what_to_install() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("no-venv");
    // What Debian's python3 says without python3-venv.
    let fake = dir.join("python3");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'The virtual environment was not created successfully because \
         ensurepip is not available.' >&2\necho 'apt install python3.11-venv' >&2\nexit 1\n",
    )
    .expect("write the fake interpreter");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let why = common::provision_pylichat(OsStr::new(&fake), &dir.join("pyenv"))
        .expect_err("no venv module, no virtualenv");
    assert_says_what_to_install(&why, "apt install python3.11-venv");
    assert!(why.contains("-m venv"), "does not say what failed: {why}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, in PEM files
/// under a fresh directory.
#[cfg(feature = "tls")]
fn self_signed_certificate() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = common::temp_data_dir();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

/// Lichat over TLS (`--tls-port`) with pylichat's own `ssl=True`: it
/// verifies the certificate (given as `ssl_options={"cafile": ...}`, and
/// refused without it) and exchanges messages with a client over TCP.
#[cfg(feature = "tls")]
#[test]
fn pylichat_with_ssl_connects_over_tls_and_exchanges_messages_with_tcp() {
    let python = common::pylichat_python();
    let (cert, key) = self_signed_certificate();
    let tls_port = common::free_port().to_string();
    let mut server = common::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        key.to_str().expect("path"),
    ]);
    server.wait_log("listening for Lichat over TLS on ");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_pylichat_tls.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(server.addr.ip().to_string())
        .arg(&tls_port)
        .arg(server.addr.port().to_string())
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", python.display()));
    assert!(
        out.status.success(),
        "pylichat TLS script failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log().join("\n")
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("pylichat over TLS ok"), "{said}");
}
