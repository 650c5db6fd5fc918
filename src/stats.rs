//! Counters, a latency histogram and the statistics snapshot.
//!
//! Latency is recorded for every timed operation, hit or miss (not only hits), into a
//! fixed-size log-linear histogram: exact below 8 µs, then 8 buckets per power of two
//! (each bucket at most 12.5% wide) up to about 19 hours. The p99 reported is the upper edge of
//! the bucket holding the 99th percentile, so it never understates.

/// Operation counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Of `hits`, those the shared tier (Upstash) answered; the others memory did.
    pub shared_hits: u64,
    /// Reads that found nothing (or only an expired entry).
    pub misses: u64,
    /// Writes.
    pub sets: u64,
    /// Explicit deletions of one key that removed something.
    pub deletes: u64,
    /// Keys removed by pattern, namespace or version invalidation.
    pub invalidations: u64,
    /// Entries removed to respect `maxEntries` or `maxBytes`.
    pub evictions: u64,
    /// Entries removed because their TTL ran out.
    pub expirations: u64,
    /// Operations that failed against the shared tier (each one counted once).
    pub errors: u64,
}

impl Counters {
    /// `hits + misses`.
    pub fn total_requests(&self) -> u64 {
        self.hits + self.misses
    }

    /// Hits as a percentage of reads, rounded to two decimals; 0 when there were no reads.
    pub fn hit_rate_percent(&self) -> f64 {
        let total = self.total_requests();
        if total == 0 {
            return 0.0;
        }
        (self.hits as f64 * 10_000.0 / total as f64).round() / 100.0
    }
}

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const OCTAVES: usize = 40;
const BUCKETS: usize = (OCTAVES + 1) * SUB as usize;

/// A fixed-size latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    buckets: Box<[u32; BUCKETS]>,
    count: u64,
    sum_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: Box::new([0; BUCKETS]),
            count: 0,
            sum_ms: 0.0,
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let e = 63 - u64::from(us.leading_zeros()); // >= SUB_BITS
    let sub = (us >> (e - u64::from(SUB_BITS))) & (SUB - 1);
    let idx = (e - u64::from(SUB_BITS) + 1) * SUB + sub;
    (idx as usize).min(BUCKETS - 1)
}

/// The largest microsecond value that falls in bucket `idx`.
fn bucket_upper_us(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < SUB {
        return idx;
    }
    let e = idx / SUB - 1 + u64::from(SUB_BITS);
    let sub = idx % SUB;
    ((SUB + sub + 1) << (e - u64::from(SUB_BITS))) - 1
}

impl LatencyHistogram {
    /// Records one duration in milliseconds. Negative or non-finite readings count as zero.
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        let us = (ms * 1000.0) as u64;
        let b = &mut self.buckets[bucket_of(us)];
        *b = b.saturating_add(1);
        self.count += 1;
        self.sum_ms += ms;
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean in milliseconds (0 when empty).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms / self.count as f64
        }
    }

    /// The `q` quantile (0..=1) in milliseconds, as the upper edge of its bucket (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return (bucket_upper_us(i) + 1) as f64 / 1000.0;
            }
        }
        (bucket_upper_us(BUCKETS - 1) + 1) as f64 / 1000.0
    }
}

/// Counters and latency together: what each cache keeps.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// The counters.
    pub counters: Counters,
    /// Latency of timed operations.
    pub latency: LatencyHistogram,
}

/// Figures read from the shared tier (Upstash `INFO` and `DBSIZE`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpstashStats {
    /// `keyspace_hits` from INFO.
    pub keyspace_hits: u64,
    /// `keyspace_misses` from INFO.
    pub keyspace_misses: u64,
    /// `evicted_keys` from INFO.
    pub evicted_keys: u64,
    /// `used_memory` from INFO, bytes.
    pub used_memory_bytes: u64,
    /// HTTP requests this client has sent (retries included).
    pub round_trips: u64,
    /// Commands and bytes this client has sent and received.
    pub traffic: crate::upstash::Traffic,
    /// The shared-tier lock (`lock`).
    pub locks: LockStats,
}

/// What the shared-tier lock (`lock`) did in one cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    /// Locks taken before generating.
    pub acquired: u64,
    /// Locks released by this cache (the others ended with their TTL).
    pub released: u64,
    /// Reads made while waiting for another instance's generation.
    pub waits: u64,
    /// Waits that ended with the value another instance stored.
    pub joins: u64,
    /// Waits that ran out (the call's timeout, or the lock's time) and generated without it.
    pub timeouts: u64,
}

/// A point-in-time view of a cache's statistics (the `stats()` result).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// `"memory"` or `"upstash"`.
    pub backend: &'static str,
    /// The current version prefix.
    pub version: String,
    /// See [`Counters`].
    pub counters: Counters,
    /// Hits as a percentage of reads.
    pub hit_rate_percent: f64,
    /// Hits plus misses.
    pub total_requests: u64,
    /// Mean latency of timed operations, milliseconds.
    pub avg_latency_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_latency_ms: f64,
    /// Live entries in the memory tier (or keys in the shared tier).
    pub keys: u64,
    /// The memory tier's entry bound.
    pub max_entries: u64,
    /// Bytes charged to the memory tier.
    pub memory_used_bytes: u64,
    /// Whether a cleanup timer runs.
    pub cleanup_timer_active: bool,
    /// Whether reads and writes are being served by memory because the shared tier is down.
    pub fallback_active: bool,
    /// Shared-tier figures, when there is a shared tier and it answered.
    pub upstash: Option<UpstashStats>,
}

impl Stats {
    /// A snapshot with the parts only the caller knows filled in from `extra`.
    pub fn snapshot(&self, extra: SnapshotContext) -> StatsSnapshot {
        StatsSnapshot {
            backend: extra.backend,
            version: extra.version,
            counters: self.counters,
            hit_rate_percent: self.counters.hit_rate_percent(),
            total_requests: self.counters.total_requests(),
            avg_latency_ms: self.latency.mean_ms(),
            p99_latency_ms: self.latency.quantile_ms(0.99),
            keys: extra.keys,
            max_entries: extra.max_entries,
            memory_used_bytes: extra.memory_used_bytes,
            cleanup_timer_active: extra.cleanup_timer_active,
            fallback_active: extra.fallback_active,
            upstash: extra.upstash,
        }
    }
}

/// The value of one field of a report that crosses into JavaScript (`stats()`, `health()`).
///
/// [`StatsSnapshot::fields`], [`UpstashStats::fields`] and
/// [`HealthReport::fields`](crate::cache::HealthReport::fields) are the one definition of those
/// objects' field names and order: the npm package's objects and the Rust Worker API's serde
/// output are both made from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A string.
    Text(&'a str),
    /// A count (a number in JavaScript).
    Count(u64),
    /// A number.
    Number(f64),
    /// A boolean.
    Flag(bool),
    /// The nested object of the shared tier's figures ([`UpstashStats::fields`]).
    Upstash(&'a UpstashStats),
    /// An optional field that has no value: it is left out of the object.
    Absent,
}

impl UpstashStats {
    /// The fields of `stats().upstash`, as `(camelCase name, value)` in order.
    pub fn fields(&self) -> [(&'static str, Field<'static>); 13] {
        let (t, l) = (&self.traffic, &self.locks);
        [
            ("keyspaceHits", Field::Count(self.keyspace_hits)),
            ("keyspaceMisses", Field::Count(self.keyspace_misses)),
            ("evictedKeys", Field::Count(self.evicted_keys)),
            ("usedMemoryBytes", Field::Count(self.used_memory_bytes)),
            ("roundTrips", Field::Count(self.round_trips)),
            ("commands", Field::Count(t.commands)),
            ("bytesSent", Field::Count(t.bytes_sent)),
            ("bytesReceived", Field::Count(t.bytes_received)),
            ("locksAcquired", Field::Count(l.acquired)),
            ("locksReleased", Field::Count(l.released)),
            ("lockWaits", Field::Count(l.waits)),
            ("lockJoins", Field::Count(l.joins)),
            ("lockTimeouts", Field::Count(l.timeouts)),
        ]
    }
}

impl StatsSnapshot {
    /// The fields of the `stats()` object, as `(camelCase name, value)` in order; `upstash` is
    /// [`Field::Absent`] without shared-tier figures.
    pub fn fields(&self) -> [(&'static str, Field<'_>); 22] {
        let c = &self.counters;
        [
            ("backend", Field::Text(self.backend)),
            ("version", Field::Text(&self.version)),
            ("hits", Field::Count(c.hits)),
            (
                "memoryHits",
                Field::Count(c.hits.saturating_sub(c.shared_hits)),
            ),
            ("sharedHits", Field::Count(c.shared_hits)),
            ("misses", Field::Count(c.misses)),
            ("hitRatePercent", Field::Number(self.hit_rate_percent)),
            ("totalRequests", Field::Count(self.total_requests)),
            ("sets", Field::Count(c.sets)),
            ("deletes", Field::Count(c.deletes)),
            ("invalidations", Field::Count(c.invalidations)),
            ("evictions", Field::Count(c.evictions)),
            ("expirations", Field::Count(c.expirations)),
            ("errors", Field::Count(c.errors)),
            ("avgLatencyMs", Field::Number(self.avg_latency_ms)),
            ("p99LatencyMs", Field::Number(self.p99_latency_ms)),
            ("keys", Field::Count(self.keys)),
            ("maxEntries", Field::Count(self.max_entries)),
            ("memoryUsedBytes", Field::Count(self.memory_used_bytes)),
            ("cleanupTimerActive", Field::Flag(self.cleanup_timer_active)),
            ("fallbackActive", Field::Flag(self.fallback_active)),
            (
                "upstash",
                self.upstash.as_ref().map_or(Field::Absent, Field::Upstash),
            ),
        ]
    }
}

/// What a snapshot needs besides the counters.
#[derive(Debug, Clone, Default)]
pub struct SnapshotContext {
    /// `"memory"` or `"upstash"`.
    pub backend: &'static str,
    /// The current version prefix.
    pub version: String,
    /// Live entries.
    pub keys: u64,
    /// Entry bound.
    pub max_entries: u64,
    /// Bytes charged.
    pub memory_used_bytes: u64,
    /// Whether a cleanup timer runs.
    pub cleanup_timer_active: bool,
    /// Whether fallback is active.
    pub fallback_active: bool,
    /// Shared-tier figures.
    pub upstash: Option<UpstashStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_rounds_to_two_decimals() {
        let c = Counters {
            hits: 2,
            misses: 1,
            ..Counters::default()
        };
        assert_eq!(c.hit_rate_percent(), 66.67);
        assert_eq!(c.total_requests(), 3);
        assert_eq!(Counters::default().hit_rate_percent(), 0.0);
    }

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = None;
        for us in 0..200_000u64 {
            let b = bucket_of(us);
            assert!(us <= bucket_upper_us(b), "{us} above its bucket's edge");
            if let Some(p) = prev {
                assert!(b == p || b == p + 1, "bucket jump at {us}");
                if b == p + 1 {
                    assert_eq!(bucket_upper_us(p), us - 1);
                }
            }
            prev = Some(b);
            // Never more than 12.5% above the true value.
            assert!(bucket_upper_us(b) as f64 <= us as f64 * 1.125 + 1.0);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_and_mean() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_ms(0.99), 0.0);
        for _ in 0..99 {
            h.record(1.0);
        }
        h.record(500.0);
        assert_eq!(h.count(), 100);
        let p99 = h.quantile_ms(0.99);
        assert!((1.0..=1.125).contains(&p99), "p99 {p99}");
        let p100 = h.quantile_ms(1.0);
        assert!((500.0..=562.5).contains(&p100), "max {p100}");
        assert!((h.mean_ms() - 5.99).abs() < 1e-9);
        h.record(f64::NAN);
        h.record(-3.0);
        assert_eq!(h.count(), 102);
    }

    #[test]
    fn field_names_are_distinct() {
        let s = Stats::default().snapshot(SnapshotContext {
            upstash: Some(UpstashStats::default()),
            ..SnapshotContext::default()
        });
        let names: std::collections::HashSet<_> = s.fields().iter().map(|f| f.0).collect();
        assert_eq!(names.len(), s.fields().len());
        let u = UpstashStats::default();
        let names: std::collections::HashSet<_> = u.fields().iter().map(|f| f.0).collect();
        assert_eq!(names.len(), u.fields().len());
    }

    #[test]
    fn snapshot_derives_rates() {
        let mut s = Stats::default();
        s.counters.hits = 3;
        s.counters.misses = 1;
        s.latency.record(2.0);
        let snap = s.snapshot(SnapshotContext {
            backend: "memory",
            version: "v1".into(),
            keys: 7,
            max_entries: 10,
            ..SnapshotContext::default()
        });
        assert_eq!(snap.hit_rate_percent, 75.0);
        assert_eq!(snap.total_requests, 4);
        assert_eq!(snap.keys, 7);
        assert!(snap.p99_latency_ms >= 2.0);
    }
}
