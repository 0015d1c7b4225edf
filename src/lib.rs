//! A Lichat chat server: wire format, protocol engine and event loop.
#![warn(missing_docs)]

pub mod engine;
pub mod net;
pub mod protocol;
pub mod store;
pub mod timer;
pub mod wake;
pub mod wire;
