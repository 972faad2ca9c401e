//! Both worker loops (plain and offload, the default) contain a panic in the translator: the
//! packet is lost and counted as `internal_errors`, the worker goes on with the next packet and
//! stops only when told to. The loops run as in the daemon, on an in-memory queue.

use arc_swap::ArcSwap;
use nat64_core::{Ctx, Verdict};
use nat64d::dataplane::{run_worker, run_worker_offload, Queue};
use nat64d::stats::WorkerStats;
use nat64d::xlator::Xlate;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tun_rs::{ExpandBuffer, GROTable, InterruptEvent};

/// Panics on a packet whose first byte is 0xff (as a bug in packet code would), forwards the
/// others unchanged.
struct Panicky;

impl Xlate for Panicky {
    fn translate(
        &self,
        _ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        _aux: &mut [u8],
    ) -> Verdict {
        if buf[start] == 0xff {
            panic!("injected translator panic");
        }
        Verdict::Forward { start, len }
    }
}

/// Packets to read, packets written; readable until the inputs run out, then it stops the worker.
struct MemQueue {
    input: Mutex<VecDeque<Vec<u8>>>,
    output: Mutex<Vec<Vec<u8>>>,
    stop: Arc<InterruptEvent>,
}

impl Queue for &MemQueue {
    fn set_nonblocking(&self, _on: bool) -> io::Result<()> {
        Ok(())
    }
    fn wait_readable_intr(&self, _stop: &InterruptEvent) -> io::Result<()> {
        if self.input.lock().unwrap().is_empty() {
            self.stop.trigger()?;
            return Err(io::ErrorKind::Interrupted.into());
        }
        Ok(())
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let p = self.input.lock().unwrap().pop_front();
        let p = p.ok_or(io::ErrorKind::WouldBlock)?;
        buf[..p.len()].copy_from_slice(&p);
        Ok(p.len())
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.output.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }
    fn recv_multiple<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        _raw: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        let p = self.input.lock().unwrap().pop_front();
        let p = p.ok_or(io::ErrorKind::WouldBlock)?;
        bufs[0].as_mut()[offset..offset + p.len()].copy_from_slice(&p);
        sizes[0] = p.len();
        Ok(1)
    }
    fn send_multiple<B: ExpandBuffer>(
        &self,
        _gro: &mut GROTable,
        bufs: &mut [B],
        offset: usize,
    ) -> io::Result<usize> {
        let mut o = self.output.lock().unwrap();
        for b in bufs.iter() {
            o.push(b.as_ref()[offset..].to_vec());
        }
        Ok(bufs.len())
    }
}

fn inputs() -> Vec<Vec<u8>> {
    vec![
        vec![0x60, 1, 2, 3],
        vec![0xff, 0, 0, 0], // the panicking one
        vec![0x45, 4, 5, 6],
    ]
}

fn queue() -> (MemQueue, Arc<InterruptEvent>) {
    let stop = Arc::new(InterruptEvent::new().expect("eventfd"));
    let q = MemQueue {
        input: Mutex::new(inputs().into()),
        output: Mutex::new(Vec::new()),
        stop: stop.clone(),
    };
    (q, stop)
}

fn check(out: &[Vec<u8>], stats: &WorkerStats) {
    assert_eq!(
        out,
        [inputs()[0].clone(), inputs()[2].clone()],
        "the others pass"
    );
    let internal = stats
        .internal_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(internal, 1, "the panicking packet is counted");
}

#[test]
fn the_plain_worker_contains_a_translator_panic() {
    let (q, stop) = queue();
    let stats = Arc::new(WorkerStats::default());
    let t = Arc::new(ArcSwap::from_pointee(Panicky));
    run_worker(0, &q, t, stats.clone(), stop, Instant::now()).expect("worker");
    check(&q.output.lock().unwrap(), &stats);
}

#[test]
fn the_offload_worker_contains_a_translator_panic() {
    let (q, stop) = queue();
    let stats = Arc::new(WorkerStats::default());
    let t = Arc::new(ArcSwap::from_pointee(Panicky));
    run_worker_offload(0, &q, 1500, t, stats.clone(), stop, Instant::now()).expect("worker");
    check(&q.output.lock().unwrap(), &stats);
}
