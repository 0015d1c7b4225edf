//! How a helper thread (the store's writer, the hashing thread) tells the
//! event loop that it has something for it: one mechanism for both, so
//! the loop has one wake-up to watch.

/// Wakes whoever waits for a helper thread's results.
pub trait Notify: Send + Sync + 'static {
    /// Called on the helper thread when a result is ready.
    fn notify(&self);
}

impl Notify for mio::Waker {
    fn notify(&self) {
        if let Err(e) = self.wake() {
            log::error!("cannot wake the event loop: {e}");
        }
    }
}

/// No notification: for tools and tests that poll for results.
pub struct NoNotify;

impl Notify for NoNotify {
    fn notify(&self) {}
}
