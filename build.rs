//! Builds the eBPF fast path (`ebpf/siit.bpf.c`) with clang into `OUT_DIR`.
//!
//! The object is never committed: it is compiled here from the C source. A machine without a
//! clang that targets BPF (Debian: `apt-get install clang libbpf-dev`) still builds nat64d: the
//! build prints a cargo warning and the fast path reports "not built" when the daemon or a test
//! asks for it (`tests/fastpath_diff.rs` then fails, saying so). `NAT64D_CLANG` names another clang.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "ebpf/siit.bpf.c";

fn main() {
    println!("cargo::rerun-if-changed={SRC}");
    println!("cargo::rerun-if-env-changed=NAT64D_CLANG");
    println!("cargo::rustc-check-cfg=cfg(nat64d_fastpath_built)");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        return;
    }
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        println!("cargo::warning=eBPF fast path not built: OUT_DIR is not set");
        return;
    };
    let clang = env::var("NAT64D_CLANG").unwrap_or_else(|_| "clang".to_string());
    let obj = out_dir.join("siit.bpf.o");
    // The multiarch include directory holds <asm/types.h> for the UAPI headers.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let result = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
        .args(["-c", SRC, "-o"])
        .arg(&obj)
        .output();
    match result {
        Ok(out) if out.status.success() => {
            println!("cargo::rustc-cfg=nat64d_fastpath_built");
        }
        Ok(out) => {
            // A compile error in our own C is a real failure, not a missing tool.
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.contains("file not found") && !stderr.contains("unknown target") {
                panic!("{SRC} does not compile:\n{stderr}");
            }
            println!(
                "cargo::warning=eBPF fast path not built: {clang} cannot target bpf ({}); \
                 install clang and libbpf-dev",
                stderr.lines().next().unwrap_or("no message")
            );
        }
        Err(e) => {
            println!(
                "cargo::warning=eBPF fast path not built: {clang}: {e}; install clang and libbpf-dev"
            );
        }
    }
}
