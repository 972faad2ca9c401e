//! Runs one benchmark case N times, for `benches/icount.sh` to count instructions per packet under
//! callgrind (deterministic, unlike wall time on a shared machine).
//!
//! Usage: icount CASE N

use nat64_core::{Ctx, Timestamp, AUX_LEN, HEADROOM};
use std::hint::black_box;

#[path = "../benches/cases.rs"]
mod cases;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let all = cases::cases();
    if args.len() != 3 {
        eprintln!("usage: icount CASE N\ncases:");
        for c in &all {
            eprintln!("  {}", c.name);
        }
        std::process::exit(2);
    }
    let Some(case) = all.iter().find(|c| c.name == args[1]) else {
        eprintln!("unknown case {}", args[1]);
        std::process::exit(2);
    };
    let n: usize = args[2].parse().unwrap_or(0);
    let s = cases::siit();
    let mut template = vec![0u8; HEADROOM + case.pkt.len()];
    template[HEADROOM..].copy_from_slice(&case.pkt);
    let mut buf = template.clone();
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let restore = cases::restore_len(&case.pkt);
    // The first and the last translation are checked against the case's expected verdict and
    // output length (a constant cost, removed by icount.sh's two-run difference), so a case that
    // falls into a drop exits non-zero instead of counting fewer instructions.
    let run = |ctx: &mut nat64_core::Ctx, buf: &mut [u8], aux: &mut [u8]| {
        buf[..restore].copy_from_slice(&template[..restore]);
        black_box(s.translate(ctx, buf, HEADROOM, case.pkt.len(), aux))
    };
    let mut v = run(&mut ctx, &mut buf, &mut aux);
    check_or_exit(case, v, &buf, &aux);
    for _ in 1..n {
        v = run(&mut ctx, &mut buf, &mut aux);
    }
    check_or_exit(case, v, &buf, &aux);
}

fn check_or_exit(case: &cases::Case, v: nat64_core::Verdict, buf: &[u8], aux: &[u8]) {
    if let Err(e) = cases::check(case, v, buf, aux) {
        eprintln!("icount: {e}");
        std::process::exit(3);
    }
}
