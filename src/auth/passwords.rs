//! Argon2id password hashes in the PHC string format, and the small pool
//! of threads that computes them for the server.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::error::{AppError, ErrorCode};

pub fn hash(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AppError::internal(std::io::Error::other(error.to_string())))
}

thread_local! {
    /// Argon2's working memory (about 19 MiB), kept by each hashing thread
    /// and reused, rather than allocated and freed per sign-in.
    static WORKING_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// False for a wrong password and for a stored hash that does not parse.
pub fn verify(password: &str, stored_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = WORKING_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        hasher.hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..blocks])
    });
    // `Output`'s comparison takes the same time wherever the bytes differ.
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs password hashing on a few threads of its own. Each Argon2 hash
/// takes about 19 MiB, and the allocator keeps that per thread that ever
/// hashed: on the general blocking pool (hundreds of threads) twenty
/// sign-ins at once kept 390 MB. Here at most `threads` hashes run at once,
/// the memory stays with those threads, and a sign-in beyond the queue's room
/// is refused with `overloaded` rather than waiting without end.
#[derive(Clone)]
pub struct HashingPool {
    jobs: SyncSender<Job>,
}

impl HashingPool {
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, waiting) = sync_channel::<Job>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for n in 0..threads.max(1) {
            let waiting = waiting.clone();
            std::thread::Builder::new().name(format!("password-hash-{n}")).spawn(move || work(&waiting))?;
        }
        Ok(HashingPool { jobs })
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(AppError::new(ErrorCode::Overloaded, "too many sign-ins at once; try again in a moment"))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AppError::new(ErrorCode::Internal, "password hashing is not running"))
            }
        }
        result.await.map_err(|_| AppError::new(ErrorCode::Internal, "password hashing stopped"))
    }

    pub async fn verify(&self, password: String, stored_hash: String) -> Result<bool, AppError> {
        self.run(move || verify(&password, &stored_hash)).await
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hash(&password)).await?
    }
}

fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        let next = waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_accepts_its_password_and_nothing_else() {
        let stored = hash("correct horse").expect("hashing works");
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("correct horse", "not a hash"));
    }
}
