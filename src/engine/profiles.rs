//! §2.3 profiles and §5.2 registration, with password hashing, and the
//! expiry of unused profiles and channels.

use super::state::Profile;
use super::{Change, Engine, Failure, Outbox, Request, Time, retain_known_fields, send_to};
use crate::wire::Known;
use sha2::Sha256;

/// PBKDF2-HMAC-SHA256 iterations for new hashes. Hashing runs on the event
/// loop, so this is chosen to keep one verification well under 10 ms on a
/// small machine; the README gives the measured figure.
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
    /// Hashes a new password with a fresh random salt.
    pub fn new(password: &str, server_salt: &str, iterations: u32) -> Password {
        let mut salt = [0u8; 16];
        if getrandom::fill(&mut salt).is_err() {
            let hex = super::connect::random_hex(16);
            for (s, b) in salt.iter_mut().zip(hex.bytes()) {
                *s = b;
            }
        }
        Password {
            salt,
            iterations,
            hash: hash_password(password, &salt, server_salt, iterations),
        }
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
        let name = self.state.user(req.user).name.clone();
        let hashed = Password::new(password, &self.config.salt, self.config.hash_iterations);
        // Steps 2–4.
        match self.state.find_profile_mut(&name) {
            Some(p) => {
                p.password = hashed;
                p.last_used = req.now;
            }
            None => self.state.put_profile(Profile {
                name,
                password: hashed,
                registered_on: req.now,
                last_used: req.now,
            }),
        }
        self.profile_changed(&self.state.user(req.user).name.clone(), out);
        out.confirm = true;
        // Step 5: the original update goes back.
        let mut reply = req.update.clone();
        retain_known_fields(&mut reply, Known::Register);
        send_to(out, req.conn, &reply);
        Ok(())
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
            let due = c.last_used.saturating_add(c.lifetime);
            if due <= now {
                dead.push(chan);
            } else {
                next = next.min(due);
            }
        }
        for chan in dead {
            if let Some(c) = self.state.remove_channel(chan) {
                log::info!("channel {:?} expired", c.name);
                out.changes.push(Change::DeleteChannel(c.name));
            }
        }
        next
    }
}
