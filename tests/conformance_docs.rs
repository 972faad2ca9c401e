//! The conformance tables (`docs/conformance/*.md`) against the code they cite.
//!
//! - In every table's `Test` column, each cited test exists as a test: `X::name` (a legend alias
//!   such as `P::` or a module path such as `core::dns64::wire::tests::`) must be a `#[test]` (or
//!   a proptest case) in the file that alias or module names; a bare `snake_case` name must be a
//!   test, a criterion bench, a helper of a test file, or a drop-reason label (the counters the
//!   rows name beside their tests). A renamed or deleted test makes its row fail here.
//! - The netns case names quoted in the DNS64 table ("...") are cases of `dns64-netns.sh`.
//! - The instruction counts `rfc6146.md` quotes for the stateless cases are those of
//!   `benches/icount-baseline.txt` (they went stale once: 829/846 quoted, 639/695 measured).
//!
//! Whether a test exercises exactly its row is a matter of reading; this file keeps the citations
//! from rotting once they are right.

use nat64_core::DropReason;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One Rust source file: the names of its test functions and of all its functions.
#[derive(Default)]
struct Fns {
    tests: BTreeSet<String>,
    all: BTreeSet<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Function names in `src`, and which of them are tests: a `#[test]`-like attribute among the
/// lines just above, or a proptest case (`fn name(x in strategy)`).
fn scan(src: &str) -> Fns {
    let lines: Vec<&str> = src.lines().collect();
    let mut f = Fns::default();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let mut is_test = rest.contains(" in ") && src.contains("proptest!");
        for prev in lines[i.saturating_sub(12)..i].iter().rev() {
            let p = prev.trim();
            if p.starts_with("#[test]") || p.starts_with("#[tokio::test") {
                is_test = true;
                break;
            }
            // The attributes and doc comments of this fn end at the previous item.
            if !(p.starts_with("#[") || p.starts_with("///") || p.starts_with("//") || p.is_empty())
            {
                break;
            }
        }
        if is_test {
            f.tests.insert(name.clone());
        }
        f.all.insert(name);
    }
    f
}

/// Every Rust file of the workspace that may hold a cited test, with its functions.
fn index() -> BTreeMap<PathBuf, Fns> {
    let mut files = Vec::new();
    for d in [
        "core/src",
        "core/tests",
        "core/benches",
        "core/examples",
        "src",
        "tests",
        "benches",
        "examples",
    ] {
        rust_files(&Path::new(ROOT).join(d), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let src = std::fs::read_to_string(&p).expect("read source");
            let rel = p.strip_prefix(ROOT).expect("under root").to_path_buf();
            (rel, scan(&src))
        })
        .collect()
}

/// Criterion group and function names (`benchmark_group("x")`, `bench_function("x")`).
fn bench_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("core/benches"), &mut files);
    rust_files(&Path::new(ROOT).join("benches"), &mut files);
    let mut out = BTreeSet::new();
    for p in files {
        let src = std::fs::read_to_string(&p).expect("read bench");
        for key in ["benchmark_group(\"", "bench_function(\""] {
            for part in src.split(key).skip(1) {
                if let Some(end) = part.find('"') {
                    out.insert(part[..end].to_string());
                }
            }
        }
    }
    out
}

/// The files a citation prefix names: the aliases the tables' legends define, else the module
/// path's last segment as `seg.rs`, `seg/mod.rs` or `seg/tests.rs` anywhere in the index.
fn files_for(prefix: &str, idx: &BTreeMap<PathBuf, Fns>) -> Vec<PathBuf> {
    let alias = match prefix {
        "P" => Some("core/tests/rfc7915_packets.rs"),
        "E" => Some("core/tests/rfc7915_edges.rs"),
        "I" => Some("core/tests/rfc7915_independent.rs"),
        "R" => Some("core/tests/rfc7915_ratelimit_id.rs"),
        "M" => Some("core/tests/rfc7915_mss.rs"),
        "B" => Some("core/tests/rfc7757_appendix_b.rs"),
        "D" => Some("tests/dataplane.rs"),
        "prop" => Some("core/tests/prop.rs"),
        "synthesis" => Some("tests/dns64_synthesis.rs"),
        "server" => Some("tests/dns64_server.rs"),
        "edges" => Some("tests/dns64_edges.rs"),
        "cache" => Some("src/dns64/cache.rs"),
        "core::dns64" => Some("core/src/dns64/mod.rs"),
        "hairpin_fragments" => Some("core/src/nat64/tests.rs"),
        _ => None,
    };
    if let Some(a) = alias {
        return vec![PathBuf::from(a)];
    }
    let seg = prefix.rsplit("::").next().unwrap_or(prefix);
    idx.keys()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.ends_with(&format!("/{seg}.rs"))
                || s.ends_with(&format!("/{seg}/mod.rs"))
                || s.ends_with(&format!("/{seg}/tests.rs"))
        })
        .cloned()
        .collect()
}

/// The cells of a table row (`| a | b |` → `["a", "b"]`), splitting on `|` outside backticks.
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut code = false;
    for c in line.trim().trim_start_matches('|').chars() {
        match c {
            '`' => {
                code = !code;
                cur.push(c);
            }
            '|' if !code => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out
}

/// (line number, Test cell) of every table row of a conformance doc.
fn test_cells(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut col = None;
    for (n, line) in doc.lines().enumerate() {
        if !line.starts_with('|') {
            col = None;
            continue;
        }
        let c = cells(line);
        if let Some(i) = c.iter().position(|x| x == "Test") {
            col = Some(i);
            continue;
        }
        if line.chars().all(|ch| matches!(ch, '|' | '-' | ' ')) {
            continue;
        }
        if let Some(i) = col {
            out.push((n + 1, c.get(i).cloned().unwrap_or_default()));
        }
    }
    out
}

fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn is_snake(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.contains('_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const DOCS: [&str; 3] = ["rfc6146.md", "rfc6147.md", "rfc7915.md"];

fn read_doc(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("docs/conformance").join(name))
        .expect("conformance doc")
}

/// Problems with one citation, or none.
fn check_citation(
    tok: &str,
    idx: &BTreeMap<PathBuf, Fns>,
    benches: &BTreeSet<String>,
    labels: &BTreeSet<&'static str>,
) -> Option<String> {
    // `held::tests::*` and `udp_4to6_…` name a family, not one test.
    if tok.ends_with('*') || tok.contains('…') || tok.contains("...") {
        return None;
    }
    let tok = tok.trim_end_matches("()");
    if let Some((prefix, name)) = tok.rsplit_once("::") {
        if !is_snake(name) && !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return None; // a type or variant (`RrData::Dname`), not a test citation
        }
        if name.is_empty() {
            return None; // `M::`: the legend's alias itself
        }
        let prefix = prefix.trim_end_matches("::tests");
        let files = if prefix.ends_with(".rs") {
            vec![PathBuf::from(prefix)] // `tests/config.rs::name`
        } else {
            files_for(prefix, idx)
        };
        if files.is_empty() {
            return Some(format!("`{tok}`: no file for prefix `{prefix}::`"));
        }
        let found = files
            .iter()
            .any(|f| idx.get(f).is_some_and(|x| x.tests.contains(name)));
        return (!found).then(|| format!("`{tok}`: no test `{name}` in {files:?}"));
    }
    if !is_snake(tok) {
        return None; // `false`, a zone name, a config value
    }
    if idx.values().any(|f| f.tests.contains(tok)) || benches.contains(tok) || labels.contains(tok)
    {
        return None;
    }
    let helper = idx.iter().any(|(p, f)| {
        let s = p.to_string_lossy();
        (s.starts_with("tests/") || s.starts_with("core/tests/")) && f.all.contains(tok)
    });
    (!helper).then(|| format!("`{tok}`: not a test, bench, test helper or drop reason"))
}

#[test]
fn every_cited_test_exists_where_the_table_says() {
    let idx = index();
    let benches = bench_names();
    let labels: BTreeSet<&'static str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut bad = Vec::new();
    let mut checked = 0;
    for name in DOCS {
        for (line, cell) in test_cells(&read_doc(name)) {
            for tok in backticked(&cell) {
                checked += 1;
                if let Some(e) = check_citation(tok, &idx, &benches, &labels) {
                    bad.push(format!("docs/conformance/{name}:{line}: {e}"));
                }
            }
        }
    }
    // The tables cite several hundred tests: a parser that found none would pass vacuously.
    assert!(checked > 300, "only {checked} citations found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn cited_dns64_netns_cases_exist() {
    let script =
        std::fs::read_to_string(Path::new(ROOT).join("netns-scripts/dns64-netns.sh")).expect("sh");
    let mut bad = Vec::new();
    let mut checked = 0;
    for (line, cell) in test_cells(&read_doc("rfc6147.md")) {
        let Some((_, after)) = cell.split_once("netns") else {
            continue;
        };
        for quoted in after.split('"').skip(1).step_by(2) {
            checked += 1;
            if !script.contains(quoted) {
                bad.push(format!(
                    "rfc6147.md:{line}: netns case \"{quoted}\" not in the script"
                ));
            }
        }
    }
    assert!(checked >= 10, "only {checked} netns citations found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn rfc6146_doc_quotes_the_current_stateless_instruction_counts() {
    let baseline = std::fs::read_to_string(Path::new(ROOT).join("benches/icount-baseline.txt"))
        .expect("baseline");
    let count = |case: &str| -> String {
        baseline
            .lines()
            .find_map(|l| {
                let (c, n) = l.split_once(' ')?;
                (c == case).then(|| n.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{case} not in benches/icount-baseline.txt"))
    };
    let (six, four) = (count("6to4/udp/64"), count("4to6/udp/64"));
    // Line breaks fall anywhere in the paragraph: compare with whitespace collapsed.
    let doc = read_doc("rfc6146.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let want = format!("(6to4/udp/64, 4to6/udp/64) count {six} and {four} in today's baseline");
    assert!(
        doc.contains(&want),
        "docs/conformance/rfc6146.md should quote the baseline's {six} and {four} as:\n{want}"
    );
}
