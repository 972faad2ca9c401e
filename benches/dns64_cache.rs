//! DNS64 answer cache: a full-cache miss storm (every insert must evict) and a hit, for the
//! CLOCK cache (`nat64d::dns64::cache::Cache`) and, as the baseline in the same run, the cache it
//! replaced (a shard scanned under its lock on every insert into a full shard, kept here only for
//! the comparison). Both are filled to the shipped default of 65,536 entries first.
//!
//! `cargo bench --bench dns64_cache`

use criterion::{criterion_group, criterion_main, Criterion};
use nat64_core::dns64::wire;
use nat64d::dns64::cache::{make_key, Cache, KEY_LEN};
use std::hint::black_box;

const ENTRIES: usize = 65536;

/// The previous cache (before the CLOCK eviction): same storage, eviction by `retain` over the
/// whole shard and then an arbitrary entry.
mod scan {
    use nat64_core::dns64::wire;
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    use std::sync::Mutex;
    use std::time::Instant;

    const SHARDS: usize = 16;

    struct Entry {
        key: Box<[u8]>,
        msg: Box<[u8]>,
        ttl_offs: Box<[u16]>,
        ttls: Box<[u32]>,
        stored_ms: u64,
        expires_ms: u64,
    }

    pub struct ScanCache {
        shards: Box<[Mutex<HashMap<u64, Entry>>]>,
        per_shard: usize,
        hasher: foldhash::fast::RandomState,
        epoch: Instant,
    }

    impl ScanCache {
        pub fn new(entries: usize) -> Self {
            ScanCache {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                per_shard: entries.div_ceil(SHARDS),
                hasher: foldhash::fast::RandomState::default(),
                epoch: Instant::now(),
            }
        }
        fn now_ms(&self) -> u64 {
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
        }
        pub fn get(&self, key: &[u8], out: &mut [u8]) -> Option<usize> {
            let h = self.hasher.hash_one(key);
            let now = self.now_ms();
            let shard = self.shards[(h as usize) % SHARDS].lock().ok()?;
            let e = shard.get(&h)?;
            if &*e.key != key || now >= e.expires_ms {
                return None;
            }
            let len = e.msg.len();
            let dst = out.get_mut(..len)?;
            dst.copy_from_slice(&e.msg);
            let age = u32::try_from((now - e.stored_ms) / 1000).unwrap_or(u32::MAX);
            for (off, ttl) in e.ttl_offs.iter().zip(e.ttls.iter()) {
                let o = usize::from(*off);
                dst[o..o + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
            Some(len)
        }
        pub fn put(&self, key: &[u8], msg: &[u8]) {
            let mut offs = Vec::new();
            let Ok(Some(ttl)) = wire::ttl_offsets(msg, &mut offs) else {
                return;
            };
            let ttls = offs
                .iter()
                .map(|&o| u32::from_be_bytes([msg[o], msg[o + 1], msg[o + 2], msg[o + 3]]))
                .collect();
            let ttl_offs = offs.iter().map(|&o| o as u16).collect();
            let now = self.now_ms();
            let entry = Entry {
                key: key.into(),
                msg: msg.into(),
                ttl_offs,
                ttls,
                stored_ms: now,
                expires_ms: now + u64::from(ttl) * 1000,
            };
            let h = self.hasher.hash_one(key);
            let mut shard = self.shards[(h as usize) % SHARDS].lock().unwrap();
            if shard.len() >= self.per_shard && !shard.contains_key(&h) {
                shard.retain(|_, e| e.expires_ms > now);
                if shard.len() >= self.per_shard {
                    if let Some(k) = shard.keys().next().copied() {
                        shard.remove(&k);
                    }
                }
            }
            shard.insert(h, entry);
        }
    }
}

/// `hN.bench. AAAA` answered with one synthesized AAAA, TTL 3600, and its cache key.
fn answer(n: u64) -> (Vec<u8>, Vec<u8>) {
    let label = format!("h{n}");
    let mut qname = vec![label.len() as u8];
    qname.extend_from_slice(label.as_bytes());
    qname.extend_from_slice(b"\x05bench\x00");
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(&qname);
    m.extend_from_slice(&[0, 28, 0, 1, 0xc0, 12, 0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16]);
    m.extend_from_slice(&[
        0x20, 1, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7,
    ]);
    let mut key = [0u8; KEY_LEN];
    let k = make_key(&mut key, &qname, 28, 1, 0);
    (key[..k].to_vec(), m)
}

fn bench(c: &mut Criterion) {
    // Answers for the fill and for the storm (all distinct names), built before timing.
    // Twice the capacity, so that every shard is full whatever the hash spread.
    let fill: Vec<_> = (0..2 * ENTRIES as u64).map(answer).collect();
    let storm: Vec<_> = (2 * ENTRIES as u64..2 * ENTRIES as u64 + 200_000)
        .map(answer)
        .collect();
    let clock = Cache::new(ENTRIES, 86400);
    let old = scan::ScanCache::new(ENTRIES);
    for (k, m) in &fill {
        clock.put(k, m);
        old.put(k, m);
    }
    // The verdict before timing: both are full, and answer a filled key with its bytes.
    assert_eq!(clock.len(), ENTRIES);
    let mut out = vec![0u8; 512];
    let (k0, m0) = fill.last().expect("filled");
    assert_eq!(clock.get(k0, &mut out), Some(m0.len()));
    assert_eq!(&out[..m0.len()], &m0[..]);
    assert_eq!(old.get(k0, &mut out), Some(m0.len()));
    assert!(wire::ttl_offsets(m0, &mut Vec::new()).is_ok());

    let mut g = c.benchmark_group("dns64_cache_full_miss_storm");
    let mut i = 0;
    g.bench_function("clock_insert", |b| {
        b.iter(|| {
            let (k, m) = &storm[i % storm.len()];
            i += 1;
            clock.put(black_box(k), black_box(m));
        })
    });
    let mut j = 0;
    g.bench_function("scan_insert_before", |b| {
        b.iter(|| {
            let (k, m) = &storm[j % storm.len()];
            j += 1;
            old.put(black_box(k), black_box(m));
        })
    });
    g.finish();
    // Still bounded, and the last inserted key is there.
    assert_eq!(clock.len(), ENTRIES);
    let (kl, ml) = &storm[(i + storm.len() - 1) % storm.len()];
    assert_eq!(clock.get(kl, &mut out), Some(ml.len()));

    // Hits: 1000 names in caches that are not full (the old one evicts arbitrary entries, hot
    // ones included, once full).
    let mut g = c.benchmark_group("dns64_cache_hit");
    let hot: Vec<_> = storm[..1000].to_vec();
    let clock = Cache::new(ENTRIES, 86400);
    let old = scan::ScanCache::new(ENTRIES);
    for (k, m) in &hot {
        clock.put(k, m);
        old.put(k, m);
    }
    let mut n = 0;
    g.bench_function("clock_get", |b| {
        b.iter(|| {
            let (k, _) = &hot[n % hot.len()];
            n += 1;
            assert!(clock.get(black_box(k), &mut out).is_some());
        })
    });
    let mut out2 = vec![0u8; 512];
    let mut n2 = 0;
    g.bench_function("scan_get_before", |b| {
        b.iter(|| {
            let (k, _) = &hot[n2 % hot.len()];
            n2 += 1;
            assert!(old.get(black_box(k), &mut out2).is_some());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
