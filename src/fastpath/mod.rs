//! The eBPF fast path: stateless SIIT (RFC 7915 with RFC 6052 pool6 and the RFC 7757 EAMT) in a
//! TC program at ingress of the IPv6-side and IPv4-side interfaces (issue 15). The program
//! (`ebpf/siit.bpf.c`, built by `build.rs`) translates the common case and punts the rest with
//! `TC_ACT_OK`, so the kernel routes it into the TUN and the core handles it as before.
//!
//! | step                                | where                                      |
//! |-------------------------------------|--------------------------------------------|
//! | build the object                    | `build.rs` (clang `-target bpf`)           |
//! | tables from the core's `SiitConfig` | [`Tables::from_siit`] (pure, tested)       |
//! | load the program, fill the maps     | [`FastPath::load`]                         |
//! | attach at TC ingress (TCX/clsact)   | [`FastPath::attach`]                       |
//! | counters (per CPU, summed)          | [`FastPath::counters`], [`COUNTER_NAMES`]  |
//! | detach                              | `Drop` of [`FastPath`] (aya detaches links) |
//!
//! What takes the fast path and what does not: `docs/fastpath.md`.

pub mod tables;

pub use tables::{Tables, TablesError};

use aya::maps::lpm_trie::Key;
use aya::maps::{Array, LpmTrie, MapData, PerCpuArray, PerCpuValues};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;
use nat64_core::siit::SiitConfig;

/// The program's section function name.
pub const PROGRAM: &str = "nat64d_siit";

/// The program's counters, in the order of `enum counter` in `ebpf/siit.bpf.c`: two translation
/// counters, then one per punt reason, then helper failures (dropped).
pub const COUNTER_NAMES: [&str; 17] = [
    "translated_6to4",
    "translated_4to6",
    "punt_not_ip",
    "punt_bad_l3",
    "punt_ext_headers_or_options",
    "punt_fragment",
    "punt_protocol",
    "punt_ttl",
    "punt_no_mapping",
    "punt_special_address",
    "punt_hairpin",
    "punt_tcp_syn",
    "punt_udp_zero_checksum",
    "punt_icmp",
    "punt_too_big",
    "punt_egress_mtu",
    "drop_helper_failed",
];

/// The compiled program, or `None` when this build had no clang that targets BPF.
pub fn object() -> Option<&'static [u8]> {
    #[cfg(nat64d_fastpath_built)]
    {
        Some(include_bytes!(concat!(env!("OUT_DIR"), "/siit.bpf.o")))
    }
    #[cfg(not(nat64d_fastpath_built))]
    {
        None
    }
}

/// Why the fast path cannot run.
#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    /// This nat64d was built without clang.
    #[error("the eBPF fast path was not built (build nat64d with clang and libbpf-dev installed)")]
    NotBuilt,
    /// The tables cannot be expressed in the program's maps.
    #[error(transparent)]
    Tables(#[from] TablesError),
    /// Loading the object or the program (verifier, permissions: CAP_BPF, CAP_NET_ADMIN).
    #[error("loading the eBPF program: {0}")]
    Load(String),
    /// A map operation.
    #[error("eBPF map {0}: {1}")]
    Map(&'static str, String),
    /// Attaching to an interface.
    #[error("attaching the eBPF program to {0}: {1}")]
    Attach(String, String),
}

/// A loaded fast path: the program with its maps filled, attached to zero or more interfaces.
/// Dropping it detaches every link and unloads the program and maps (nothing is pinned).
pub struct FastPath {
    ebpf: Ebpf,
    attached: Vec<String>,
    /// Egress interface indexes (IPv4, IPv6) written into the configuration.
    egress: (u32, u32),
}

fn map_err<E: std::fmt::Display>(name: &'static str) -> impl Fn(E) -> FastPathError {
    move |e| FastPathError::Map(name, e.to_string())
}

impl FastPath {
    /// Loads the program and fills its maps from `tables`. Nothing is attached yet.
    ///
    /// # Errors
    /// [`FastPathError::NotBuilt`], or the kernel's refusal (verifier, permissions), or a map
    /// update failure.
    pub fn load(tables: &Tables) -> Result<FastPath, FastPathError> {
        let obj = object().ok_or(FastPathError::NotBuilt)?;
        let mut ebpf = Ebpf::load(obj).map_err(|e| FastPathError::Load(e.to_string()))?;
        {
            let prog = ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| FastPathError::Load(format!("no program {PROGRAM}")))?;
            let cls: &mut SchedClassifier = prog
                .try_into()
                .map_err(|e: aya::programs::ProgramError| FastPathError::Load(e.to_string()))?;
            cls.load()
                .map_err(|e| FastPathError::Load(format!("{e} ({e:?})")))?;
        }
        let mut fp = FastPath {
            ebpf,
            attached: Vec::new(),
            egress: (0, 0),
        };
        fp.fill(tables)?;
        Ok(fp)
    }

    /// Loads the program for `cfg` (the `[fastpath]` table) over `siit`'s tables and attaches it
    /// to every listed interface. Translated IPv4 leaves by the first IPv4 interface and
    /// translated IPv6 by the first IPv6 interface.
    ///
    /// # Errors
    /// Any [`FastPathError`]; what was attached is detached again (the value is dropped).
    pub fn start(
        cfg: &crate::config::FastPathConfig,
        siit: &SiitConfig,
    ) -> Result<FastPath, FastPathError> {
        let index = |name: &String| {
            nix::net::if_::if_nametoindex(name.as_str())
                .map_err(|e| FastPathError::Attach(name.clone(), e.to_string()))
        };
        let if4 = cfg
            .ipv4_interfaces
            .first()
            .map(index)
            .transpose()?
            .unwrap_or(0);
        let if6 = cfg
            .ipv6_interfaces
            .first()
            .map(index)
            .transpose()?
            .unwrap_or(0);
        let mut fp = FastPath::load(&Tables::from_siit(siit, if4, if6)?)?;
        fp.egress = (if4, if6);
        for i in cfg.ipv6_interfaces.iter().chain(&cfg.ipv4_interfaces) {
            fp.attach(i)?;
        }
        Ok(fp)
    }

    /// Replaces the tables after a reload: the program punts everything (no egress) while the
    /// tries are rewritten, so no packet sees half of the old and half of the new tables.
    ///
    /// # Errors
    /// [`FastPathError`]; the caller should then drop the fast path (TUN only).
    pub fn refresh(&mut self, siit: &SiitConfig) -> Result<(), FastPathError> {
        let (if4, if6) = self.egress;
        let t = Tables::from_siit(siit, if4, if6)?;
        let mut off = t.config;
        off[0..8].fill(0);
        self.set_config(&off)?;
        self.clear()?;
        self.fill(&t)
    }

    fn set_config(&mut self, c: &[u8; tables::CONFIG_LEN]) -> Result<(), FastPathError> {
        let m = self
            .ebpf
            .map_mut("CONFIG")
            .ok_or(FastPathError::Map("CONFIG", "missing".into()))?;
        let mut cfg: Array<&mut MapData, [u8; tables::CONFIG_LEN]> =
            Array::try_from(m).map_err(map_err("CONFIG"))?;
        cfg.set(0, c, 0).map_err(map_err("CONFIG"))
    }

    fn clear(&mut self) -> Result<(), FastPathError> {
        fn clear_trie<K: aya::Pod, V: aya::Pod>(
            ebpf: &mut Ebpf,
            name: &'static str,
        ) -> Result<(), FastPathError> {
            let m = ebpf
                .map_mut(name)
                .ok_or(FastPathError::Map(name, "missing".into()))?;
            let mut trie: LpmTrie<&mut MapData, K, V> =
                LpmTrie::try_from(m).map_err(map_err(name))?;
            let keys: Vec<Key<K>> = trie.keys().filter_map(Result::ok).collect();
            for k in keys {
                trie.remove(&k).map_err(map_err(name))?;
            }
            Ok(())
        }
        clear_trie::<[u8; 16], [u8; 4]>(&mut self.ebpf, "POOL6")?;
        clear_trie::<[u8; 16], [u8; tables::EAM_LEN]>(&mut self.ebpf, "EAMT6")?;
        clear_trie::<[u8; 4], [u8; tables::EAM_LEN]>(&mut self.ebpf, "EAMT4")
    }

    /// The counters as `name=value` pairs for the log.
    pub fn render_counters(&self) -> String {
        match self.counters() {
            Ok(c) => COUNTER_NAMES
                .iter()
                .zip(c)
                .filter(|(_, v)| *v != 0)
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => e.to_string(),
        }
    }

    fn fill(&mut self, t: &Tables) -> Result<(), FastPathError> {
        // The tries first, the configuration (with the egress devices) last.
        let m = self
            .ebpf
            .map_mut("POOL6")
            .ok_or(FastPathError::Map("POOL6", "missing".into()))?;
        let mut pool6: LpmTrie<&mut MapData, [u8; 16], [u8; 4]> =
            LpmTrie::try_from(m).map_err(map_err("POOL6"))?;
        for (len, addr, val) in &t.pool6 {
            pool6
                .insert(&Key::new(*len, *addr), val, 0)
                .map_err(map_err("POOL6"))?;
        }

        let m = self
            .ebpf
            .map_mut("EAMT6")
            .ok_or(FastPathError::Map("EAMT6", "missing".into()))?;
        let mut e6: LpmTrie<&mut MapData, [u8; 16], [u8; tables::EAM_LEN]> =
            LpmTrie::try_from(m).map_err(map_err("EAMT6"))?;
        for (len, addr, val) in &t.eamt6 {
            e6.insert(&Key::new(*len, *addr), val, 0)
                .map_err(map_err("EAMT6"))?;
        }

        let m = self
            .ebpf
            .map_mut("EAMT4")
            .ok_or(FastPathError::Map("EAMT4", "missing".into()))?;
        let mut e4: LpmTrie<&mut MapData, [u8; 4], [u8; tables::EAM_LEN]> =
            LpmTrie::try_from(m).map_err(map_err("EAMT4"))?;
        for (len, addr, val) in &t.eamt4 {
            e4.insert(&Key::new(*len, *addr), val, 0)
                .map_err(map_err("EAMT4"))?;
        }
        self.set_config(&t.config)
    }

    /// The loaded program, for `BPF_PROG_TEST_RUN` in tests.
    ///
    /// # Errors
    /// If the object has no such program (never, for our own object).
    pub fn program(&self) -> Result<&SchedClassifier, FastPathError> {
        let p = self
            .ebpf
            .program(PROGRAM)
            .ok_or_else(|| FastPathError::Load(format!("no program {PROGRAM}")))?;
        p.try_into()
            .map_err(|e: aya::programs::ProgramError| FastPathError::Load(e.to_string()))
    }

    /// Attaches the program at TC ingress of `iface` (TCX on kernels that have it, a clsact
    /// qdisc and a netlink filter otherwise). The link lives as long as this value.
    ///
    /// # Errors
    /// [`FastPathError::Attach`] with the kernel's reason.
    pub fn attach(&mut self, iface: &str) -> Result<(), FastPathError> {
        let prog = self
            .ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| FastPathError::Load(format!("no program {PROGRAM}")))?;
        let cls: &mut SchedClassifier = prog
            .try_into()
            .map_err(|e: aya::programs::ProgramError| FastPathError::Load(e.to_string()))?;
        if let Err(first) = cls.attach(iface, TcAttachType::Ingress) {
            // Kernels before TCX: a clsact qdisc first (an existing one is fine).
            let _ = aya::programs::tc::qdisc_add_clsact(iface);
            cls.attach_with_options(
                iface,
                TcAttachType::Ingress,
                aya::programs::tc::TcAttachOptions::Netlink(Default::default()),
            )
            .map_err(|e| FastPathError::Attach(iface.to_string(), format!("{first}; {e}")))?;
        }
        self.attached.push(iface.to_string());
        Ok(())
    }

    /// The interfaces the program is attached to.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// The counters summed over CPUs, in [`COUNTER_NAMES`] order.
    ///
    /// # Errors
    /// A map read failure.
    pub fn counters(&self) -> Result<[u64; COUNTER_NAMES.len()], FastPathError> {
        let m = self
            .ebpf
            .map("COUNTERS")
            .ok_or(FastPathError::Map("COUNTERS", "missing".into()))?;
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(m).map_err(map_err("COUNTERS"))?;
        let mut out = [0u64; COUNTER_NAMES.len()];
        for (i, slot) in out.iter_mut().enumerate() {
            let v = arr.get(&(i as u32), 0).map_err(map_err("COUNTERS"))?;
            *slot = v.iter().sum();
        }
        Ok(out)
    }

    /// Sets the IPv4 identification generator's state on every CPU (the next ID is
    /// `state + 0x9e37`, as the core's `Ctx::ip_id`). Tests use it to line the program up with
    /// the core.
    ///
    /// # Errors
    /// A map write failure.
    pub fn set_ip_id_state(&mut self, state: u16) -> Result<(), FastPathError> {
        let m = self
            .ebpf
            .map_mut("IP_ID")
            .ok_or(FastPathError::Map("IP_ID", "missing".into()))?;
        let mut arr: PerCpuArray<&mut MapData, u32> =
            PerCpuArray::try_from(m).map_err(map_err("IP_ID"))?;
        let n =
            aya::util::nr_cpus().map_err(|(_, e)| FastPathError::Map("IP_ID", e.to_string()))?;
        let vals = PerCpuValues::try_from(vec![u32::from(state); n]).map_err(map_err("IP_ID"))?;
        arr.set(0, vals, 0).map_err(map_err("IP_ID"))?;
        Ok(())
    }
}

/// Fills tables from the core's configuration and the egress interfaces' indexes.
///
/// # Errors
/// See [`Tables::from_siit`].
pub fn tables_for(
    siit: &SiitConfig,
    ifindex4: u32,
    ifindex6: u32,
) -> Result<Tables, FastPathError> {
    Ok(Tables::from_siit(siit, ifindex4, ifindex6)?)
}
