//! §2.3 profiles and §5.2 registration, with password hashing, and the
//! expiry of unused profiles and channels.

use super::state::{Profile, Waiting};
use super::undo::Undo;
use super::{Change, ConnId, Engine, Failure, Outbox, Request, Time, retain_known_fields, send_to};
use crate::wire::{Known, Object, Value};
use sha2::Sha256;
use std::collections::VecDeque;

/// The hashing a password job does.
#[derive(Clone, Debug)]
pub enum HashWork {
    /// §4.1.7: compare with a stored hash.
    Verify(Password),
    /// §5.2.3: hash a new password with a fresh salt.
    Create {
        /// PBKDF2 iterations.
        iterations: u32,
    },
}

/// A password hash to compute off the event loop (§4.1.7, §5.2): PBKDF2 is
/// deliberately slow, and every other client would wait for it.
#[derive(Clone, Debug)]
pub struct HashJob {
    /// The connection waiting for it.
    pub conn: ConnId,
    /// Tells this job from earlier ones of the same connection id.
    pub id: u64,
    /// The password from the update.
    pub password: String,
    /// The server-wide salt.
    pub salt: String,
    /// Verify or create.
    pub work: HashWork,
}

/// The outcome of a [`HashJob`].
#[derive(Clone, Debug)]
pub enum HashDone {
    /// The comparison, with the hash compared against.
    Verified {
        /// The stored hash the password was checked against.
        hash: Password,
        /// Whether it matched.
        matches: bool,
    },
    /// The new hash.
    Created(Password),
    /// §5.2.3: no salt could be had from the operating system's random
    /// generator, so no hash was made.
    NoRandomness,
}

impl HashJob {
    /// Does the hashing; safe to run on any thread.
    pub fn run(&self) -> HashDone {
        match &self.work {
            HashWork::Verify(hash) => HashDone::Verified {
                matches: hash.verify(&self.password, &self.salt),
                hash: hash.clone(),
            },
            HashWork::Create { iterations } => {
                match Password::new(&self.password, &self.salt, *iterations) {
                    Some(p) => HashDone::Created(p),
                    None => HashDone::NoRandomness,
                }
            }
        }
    }
}

/// PBKDF2-HMAC-SHA256 iterations for new hashes, chosen to keep one
/// verification well under 10 ms on a small machine (it runs on the
/// hashing thread); the README gives the measured figure.
pub const DEFAULT_ITERATIONS: u32 = 20_000;

/// §2.3.1 the shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 6;

/// A stored password: PBKDF2-HMAC-SHA256 of the password with a random
/// per-profile salt followed by the server's salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password {
    /// The per-profile random salt.
    pub salt: [u8; 16],
    /// PBKDF2 iterations used for this hash.
    pub iterations: u32,
    /// The derived key.
    pub hash: [u8; 32],
}

/// Derives the key of a password (§5.2: only a hash is stored).
pub fn hash_password(
    password: &str,
    salt: &[u8; 16],
    server_salt: &str,
    iterations: u32,
) -> [u8; 32] {
    let mut full_salt = Vec::with_capacity(16 + server_salt.len());
    full_salt.extend_from_slice(salt);
    full_salt.extend_from_slice(server_salt.as_bytes());
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &full_salt, iterations.max(1), &mut out);
    out
}

impl Password {
    /// Hashes a new password with a fresh salt from the operating system's
    /// random generator (§5.2); `None` when it has none to give, since a
    /// predictable salt would defeat its purpose.
    pub fn new(password: &str, server_salt: &str, iterations: u32) -> Option<Password> {
        let salt = super::random::random_salt()?;
        Some(Password {
            salt,
            iterations,
            hash: hash_password(password, &salt, server_salt, iterations),
        })
    }

    /// Compares a password with the stored hash in constant time.
    pub fn verify(&self, password: &str, server_salt: &str) -> bool {
        let candidate = hash_password(password, &self.salt, server_salt, self.iterations);
        let diff = candidate
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl Engine {
    /// §5.2 register: create the profile or change its password.
    pub(super) fn register(&mut self, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
        let password = req.str_field(Known::KPassword).unwrap_or_default();
        // Step 1.
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Failure::new(
                Known::RegistrationRejected,
                format!("A password must have at least {MIN_PASSWORD_CHARS} characters."),
            ));
        }
        let name = &self.state.user(req.user).name;
        if self.state.find_profile(name).is_none()
            && self.state.profile_count() >= self.config.max_profiles
        {
            return Err(Failure::new(
                Known::RegistrationRejected,
                format!(
                    "The server holds its maximum of {} profiles.",
                    self.config.max_profiles
                ),
            ));
        }
        // shirakumo-otp (`shirakumo.mess` §24): a bad key changes nothing.
        super::ext::otp::check_register(&req.update)?;
        // The hash is computed off the loop; `registered` continues.
        let work = HashWork::Create {
            iterations: self.config.hash_iterations,
        };
        let password = password.to_owned();
        self.wait_for_hash(req.conn, password, work, req.update.clone(), out);
        Ok(())
    }

    /// §5.2 steps 2–5 once the new password's hash is ready.
    fn registered(
        &mut self,
        conn: ConnId,
        update: Object,
        hashed: Password,
        now: Time,
        out: &mut Outbox,
    ) {
        let Some(user) = self.state.connection(conn).and_then(|c| c.user) else {
            return;
        };
        let name = self.state.user(user).name.clone();
        if self.state.find_profile(&name).is_none()
            && self.state.profile_count() >= self.config.max_profiles
        {
            // Filled up while the hash was computed.
            let f = self.failure(
                Known::RegistrationRejected,
                update.get(Known::KId).cloned(),
                format!(
                    "The server holds its maximum of {} profiles.",
                    self.config.max_profiles
                ),
                now,
            );
            send_to(out, conn, &f);
            return;
        }
        // Steps 2–4.
        let before = self
            .state
            .find_profile(&name)
            .map(|p| (p.password.clone(), p.data.clone()));
        match self.state.find_profile_mut(&name) {
            Some(p) => {
                p.password = hashed;
                p.last_used = now;
            }
            None => self.state.put_profile(Profile {
                name: name.clone(),
                password: hashed,
                registered_on: now,
                last_used: now,
                data: Default::default(),
            }),
        }
        // shirakumo-otp (`shirakumo.mess` §24 step 1): the key, if given.
        super::ext::otp::registered(self, &name, &update);
        self.profile_changed(&name, out);
        // Step 5: the original update goes back.
        let first = out.sends.len();
        let update_id = update.get(Known::KId).cloned().unwrap_or(Value::NIL);
        let mut reply = update;
        retain_known_fields(&mut reply, Known::Register);
        send_to(out, conn, &reply);
        self.confirm(out, first, conn, update_id, Undo::Profile { name, before });
    }

    /// Parks a connection until a password hash is computed: the job goes
    /// out in the outbox, and the connection's later updates wait.
    pub(super) fn wait_for_hash(
        &mut self,
        conn: ConnId,
        password: String,
        work: HashWork,
        update: Object,
        out: &mut Outbox,
    ) {
        self.next_job += 1;
        let id = self.next_job;
        if let Some(c) = self.state.connection_mut(conn) {
            c.waiting = Some(Waiting { job: id, update });
            out.events.push(super::ConnEvent::Waiting(conn));
        }
        out.jobs.push(HashJob {
            conn,
            id,
            password,
            salt: self.config.salt.clone(),
            work,
        });
    }

    /// True while the connection waits for a password job; the net layer
    /// stops reading from it meanwhile.
    pub fn is_waiting(&self, conn: ConnId) -> bool {
        self.state
            .connection(conn)
            .is_some_and(|c| c.waiting.is_some())
    }

    /// A password job finished: the waiting update continues, then the
    /// updates that arrived meanwhile are handled in order. A result for a
    /// connection that is gone, or for an older job, is ignored.
    pub fn job_done(
        &mut self,
        conn: ConnId,
        job: u64,
        done: HashDone,
        now: Time,
        out: &mut Outbox,
    ) {
        let Some(c) = self.state.connection_mut(conn) else {
            return;
        };
        if c.waiting.as_ref().is_none_or(|w| w.job != job) {
            return;
        }
        let Some(waiting) = c.waiting.take() else {
            return;
        };
        let mut update = waiting.update;
        match done {
            HashDone::Verified { hash, matches } => {
                self.connect_checked(conn, &mut update, Some((&hash, matches)), now, out);
            }
            HashDone::Created(hashed) => self.registered(conn, update, hashed, now, out),
            HashDone::NoRandomness => {
                let f = self.failure(
                    Known::RegistrationRejected,
                    update.get(Known::KId).cloned(),
                    "The server cannot get random bytes from its operating system \
                     for a password salt; try again later.",
                    now,
                );
                send_to(out, conn, &f);
            }
        }
        while !self.is_waiting(conn) {
            let Some(next) = self
                .state
                .connection_mut(conn)
                .and_then(|c| c.deferred.pop_front())
            else {
                break;
            };
            self.handle(conn, next, now, out);
        }
        if let Some(c) = self.state.connection_mut(conn)
            && c.deferred.is_empty()
        {
            c.deferred = VecDeque::new();
        }
        if self
            .state
            .connection(conn)
            .is_some_and(|c| c.waiting.is_none())
        {
            out.events.push(super::ConnEvent::Ready(conn));
        }
    }

    /// Runs the outbox's password jobs on this thread and feeds their
    /// results back, until none are left: for tests and tools that do
    /// without the net layer's hashing thread.
    pub fn complete_jobs(&mut self, now: Time, out: &mut Outbox) {
        while !out.jobs.is_empty() {
            let jobs = std::mem::take(&mut out.jobs);
            for job in jobs {
                let done = job.run();
                self.job_done(job.conn, job.id, done, now, out);
            }
        }
    }

    /// Expires profiles unused for their lifetime (§2.3, §5.2.4) and
    /// regular channels empty for theirs (§2.4). Returns when it next has
    /// something to expire (at the latest in an hour).
    pub fn expire(&mut self, now: Time, out: &mut Outbox) -> Time {
        let mut next = now + 3600;
        let lifetime = self.config.profile_lifetime;
        let mut dead = Vec::new();
        for p in self.state.profiles() {
            if self.state.find_user(&p.name).is_some() {
                continue;
            }
            let due = p.last_used.saturating_add(lifetime);
            if due <= now {
                dead.push(p.name.clone());
            } else {
                next = next.min(due);
            }
        }
        for name in dead {
            self.state.remove_profile(&name);
            log::info!("profile {name:?} expired");
            out.changes.push(Change::DeleteProfile(name));
        }
        let primary = self.state.primary;
        let mut dead = Vec::new();
        for chan in self.state.channel_ids() {
            let c = self.state.channel(chan);
            if chan == primary || c.member_count() > 0 {
                continue;
            }
            let lifetime = if self.state.find_profile(&c.registrant).is_some() {
                c.lifetime
            } else {
                c.lifetime.min(self.config.unregistered_channel_lifetime)
            };
            let due = c.last_used.saturating_add(lifetime);
            if due <= now {
                dead.push(chan);
            } else {
                next = next.min(due);
            }
        }
        for chan in dead {
            if let Some(c) = self.state.remove_channel(chan) {
                log::info!("channel {:?} expired", c.name);
                self.channel_removed(&c, out);
                out.changes.push(Change::DeleteChannel(c.name));
            }
        }
        next
    }
}
