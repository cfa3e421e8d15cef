//! The floors the benchmark compares against (`scripts/bench.sh` runs it in release): the
//! median of one bcrypt verify at `M2M_BCRYPT_COST` (default 10), the most a core can do for a
//! credential it has not seen, and of one RS256 signature with the local key, the least an
//! exchange costs. Prints `FLOORS bcrypt_ms=… sign_ms=…`.

use std::time::Instant;

use m2m_shared::adapters::LocalKeySigner;
use m2m_shared::ports::Signer;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cost = std::env::var("M2M_BCRYPT_COST").map_or(Ok(10), |c| c.parse())?;
    let secret = "m2mt_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg000000";
    let hash = bcrypt::hash(secret, cost)?;
    let mut bcrypt_ms = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        assert!(bcrypt::verify(secret, &hash)?);
        bcrypt_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let dir = std::env::temp_dir().join(format!("m2m-floors-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let signer = LocalKeySigner::load_or_create(&dir.join("key.pem"))?;
    let message = [b'x'; 400];
    let mut sign_ms = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        signer.sign(&message).await?;
        sign_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::remove_dir_all(&dir)?;
    println!(
        "FLOORS bcrypt_ms={:.2} sign_ms={:.3}",
        median(bcrypt_ms),
        median(sign_ms)
    );
    Ok(())
}
