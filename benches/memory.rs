//! Memory tier: get hit, insert with eviction churn, and a Zipf-distributed get-or-insert load
//! (whose hit ratio is printed, as it says how well LRU fits a skewed load).
#![allow(missing_docs)]

use std::hint::black_box;

use cachette::cache::MemoryTier;
use cachette::memory::MemoryConfig;
use criterion::{criterion_group, criterion_main, Criterion};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Samples ranks 0..n with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}
impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|i| {
                acc += 1.0 / ((i + 1) as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn tier(max_entries: usize) -> MemoryTier<u64> {
    MemoryTier::new(MemoryConfig {
        max_entries,
        max_bytes: None,
    })
    .expect("bounds")
}

fn bench(c: &mut Criterion) {
    let keys: Vec<String> = (0..100_000)
        .map(|i| format!("v1:subtopics:{i:032x}"))
        .collect();

    let mut t = tier(10_000);
    for (i, k) in keys.iter().take(10_000).enumerate() {
        t.insert(k, i as u64, 0, Some(3_600_000), 0)
            .expect("insert");
    }
    let mut i = 0;
    c.bench_function("memory/get_hit (10k entries)", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(t.get(&keys[i], 1));
        })
    });

    let mut t = tier(10_000);
    let mut i = 0;
    c.bench_function("memory/insert_evict (100k keys into 10k)", |b| {
        b.iter(|| {
            i = (i + 1) % 100_000;
            t.insert(&keys[i], i as u64, 0, Some(3_600_000), 0)
                .expect("insert");
        })
    });

    let zipf = Zipf::new(100_000, 1.0);
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut t = tier(10_000);
    let (mut hits, mut total) = (0u64, 0u64);
    c.bench_function(
        "memory/zipf_get_or_insert (s=1.0, 100k keys, 10k entries)",
        |b| {
            b.iter(|| {
                let k = &keys[zipf.sample(&mut rng)];
                total += 1;
                if t.get(k, 1).is_some() {
                    hits += 1;
                } else {
                    t.insert(k, 1, 0, Some(3_600_000), 1).expect("insert");
                }
            })
        },
    );
    println!(
        "zipf s=1.0 over 100k keys, 10k entries: hit ratio {:.1}% over {total} operations",
        100.0 * hits as f64 / total.max(1) as f64
    );

    let mut t = tier(10_000);
    let mut now = 0u64;
    let mut i = 0;
    c.bench_function(
        "memory/insert_with_expiry_sweep (ttl 1ms, clock advancing)",
        |b| {
            b.iter(|| {
                i = (i + 1) % 100_000;
                now += 1;
                t.insert(&keys[i], 1, 0, Some(1), now).expect("insert");
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
