//! The raw Argon2id bound: hashes per second with `N` threads hashing back to back, with the
//! server's parameters and no HTTP, database or queueing. Login throughput is reported as a
//! ratio against this number measured in the same run.
//!
//! `cargo run --release -p auth-server --example argon2_bound -- [threads] [seconds]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(usize::from).unwrap_or(2));
    let seconds: u64 = args.next().and_then(|value| value.parse().ok()).unwrap_or(10);
    let params = Params::new(19_456, 2, 1, Some(32)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let params = params.clone();
            std::thread::spawn(move || {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut blocks = vec![Block::default(); params.block_count()];
                let mut output = [0u8; 32];
                let mut count = 0u64;
                while Instant::now() < deadline {
                    let salt = [worker as u8; 16];
                    argon2
                        .hash_password_into_with_memory(b"bench-password", &salt, &mut output, &mut blocks)
                        .unwrap();
                    count += 1;
                }
                count
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|worker| worker.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{{\"threads\": {threads}, \"hashes\": {total}, \"seconds\": {elapsed:.3}, \"hashes_per_second\": {:.2}}}",
        total as f64 / elapsed
    );
}
