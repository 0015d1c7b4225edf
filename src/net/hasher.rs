//! The password-hashing thread (§4.1.7, §5.2). PBKDF2 is slow on purpose;
//! run on the event loop it would stall every client for each login and
//! registration. The loop hands jobs over, keeps serving, and is woken
//! when results are ready.

use crate::engine::{ConnId, HashDone, HashJob};
use crate::wake::Notify;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

/// A finished job: the connection, the job's id and its outcome.
pub type Finished = (ConnId, u64, HashDone);

/// The hashing thread and the channels to and from it.
pub struct Hasher {
    jobs: Option<Sender<HashJob>>,
    done: Receiver<Finished>,
    thread: Option<JoinHandle<()>>,
}

impl Hasher {
    /// Starts the thread; `notify` wakes the loop after each result.
    pub fn start(notify: Arc<dyn Notify>) -> io::Result<Hasher> {
        let (jobs, inbox) = channel::<HashJob>();
        let (results, done) = channel::<Finished>();
        let thread = std::thread::Builder::new()
            .name("lichat-hasher".into())
            .spawn(move || {
                for job in inbox {
                    let outcome = job.run();
                    if results.send((job.conn, job.id, outcome)).is_err() {
                        break;
                    }
                    notify.notify();
                }
            })?;
        Ok(Hasher {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Queues a job.
    pub fn submit(&self, job: HashJob) {
        if let Some(jobs) = &self.jobs
            && jobs.send(job).is_err()
        {
            log::error!("the hashing thread has stopped");
        }
    }

    /// A finished job, if one is ready.
    pub fn try_recv(&self) -> Option<Finished> {
        self.done.try_recv().ok()
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("the hashing thread failed");
        }
    }
}
