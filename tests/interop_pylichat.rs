//! Interoperability with the real Python client `pylichat` (installed by
//! `.ci/run`): two clients create and join a channel and exchange messages.

mod common;

use std::process::Command;

#[test]
fn two_pylichat_clients_create_join_and_exchange_messages() {
    let probe = Command::new("python3")
        .args(["-c", "import pylichat"])
        .output()
        .expect("python3 is needed for the interop test");
    assert!(
        probe.status.success(),
        "pylichat is not installed: run `python3 -m pip install pylichat==1.4` (.ci/run does)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let server = common::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_pylichat.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pylichat script failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log().join("\n")
    );
}
