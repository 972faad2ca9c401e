//! docs/operations.md and deploy/prometheus/nat64d-rules.yml against the code.
//!
//! - Every metric a scrape exposes (rendered by `nat64d::metrics` with both the NAT64 tables and
//!   the DNS64 server present, so every family appears) has a row in the doc's metrics table,
//!   and every row names an exposed metric.
//! - Every `DropReason` label has a row in the doc's drop-reason table, and every row is a label.
//! - Every DNS64 counter (`event` label) has a row in the doc's DNS64 table, and the reverse.
//! - Every `nat64d_*` name in the alert rules is a sample name a scrape exposes, and every
//!   `reason` label value the rules name is a drop reason.
//! - Every ```toml block of the doc is a configuration `nat64d check-config` accepts.

use nat64_core::nat64::Nat64;
use nat64_core::DropReason;
use nat64d::dns64::stats::{Counter as DnsCounter, Stats as DnsStats};
use nat64d::metrics::{registry, render, Sources};
use nat64d::stats::WorkerStats;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md");
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/nat64d-rules.yml"
);

/// A scrape of a daemon in mode nat64 with DNS64: every family is present.
fn scrape() -> String {
    let text = "mode = \"nat64\"\npool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n\
                [nat64.pool4]\naddresses = [\"192.0.2.1\"]\n";
    let cfg = nat64d::config::parse(Path::new("t.toml"), text).expect("config");
    let mut core = cfg.nat64.expect("nat64").core;
    core.max_sessions = 1024;
    let nat = Arc::new(Nat64::new(core).expect("nat64"));
    let src = Arc::new(Sources {
        mode: "nat64",
        workers: vec![Arc::new(WorkerStats::default())],
        epoch: Instant::now(),
        nat: Some(nat),
        dns64: Some(Arc::new(DnsStats::default())),
        reloads: Arc::default(),
    });
    render(&registry(src), nat64d::metrics::Format::OpenMetrics)
}

/// The names an operator queries: counters with `_total`, histograms and gauges as declared.
fn exposed_metrics(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut w = l.split(' ');
            let (name, ty) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            if ty == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            }
        })
        .collect()
}

/// Every sample name (`nat64d_x_total`, `nat64d_y_bucket`, ...).
fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
        .collect()
}

/// The lines of `doc` under the heading line `heading`, up to the next heading of any level
/// (lines inside ``` fences are never headings).
fn section(doc: &str, heading: &str) -> String {
    let mut lines = doc.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "docs/operations.md has no heading {heading:?}"
    );
    let mut fenced = false;
    let mut out = String::new();
    for l in lines {
        if l.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && l.starts_with('#') && l.trim_start_matches('#').starts_with(' ') {
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// First cells (in backticks) of the table rows of `text`: "| `name` | ..." gives "name".
fn table_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// `code` and `doc` as sets, each difference named.
fn same(what: &str, code: &BTreeSet<String>, doc: &[String]) {
    let doc_set: BTreeSet<String> = doc.iter().cloned().collect();
    assert_eq!(doc.len(), doc_set.len(), "{what}: a row appears twice");
    let missing: Vec<_> = code.difference(&doc_set).collect();
    let extra: Vec<_> = doc_set.difference(code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: in the code but not in docs/operations.md: {missing:?}; \
         in docs/operations.md but not in the code: {extra:?}"
    );
}

fn doc() -> String {
    std::fs::read_to_string(DOC).expect("docs/operations.md")
}

#[test]
fn every_metric_is_documented_and_every_documented_metric_exists() {
    let exposed = exposed_metrics(&scrape());
    assert!(
        exposed.len() >= 20,
        "scrape rendered too little: {exposed:?}"
    );
    let doc = doc();
    same(
        "metrics",
        &exposed,
        &table_keys(&section(&doc, "## Metrics")),
    );
}

#[test]
fn every_drop_reason_is_documented_and_every_documented_reason_exists() {
    let code: BTreeSet<String> = DropReason::ALL
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    let doc = doc();
    same(
        "drop reasons",
        &code,
        &table_keys(&section(&doc, "## Drop reasons")),
    );
}

#[test]
fn every_dns64_event_is_documented() {
    let code: BTreeSet<String> = DnsCounter::ALL
        .iter()
        .map(|c| c.label().to_string())
        .collect();
    let doc = doc();
    same(
        "DNS64 events",
        &code,
        &table_keys(&section(&doc, "### DNS64 events")),
    );
}

#[test]
fn alert_rules_name_only_exposed_metrics_and_real_drop_reasons() {
    let samples = sample_names(&scrape());
    let rules = std::fs::read_to_string(RULES).expect("rules");
    let mut names = BTreeSet::new();
    for (i, _) in rules.match_indices("nat64d_") {
        // A metric name starts a token (not inside an alert name such as Nat64dDown).
        let before = rules[..i].chars().last().unwrap_or(' ');
        if before.is_ascii_alphanumeric() || before == '_' {
            continue;
        }
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    assert!(names.len() >= 8, "rules name too few metrics: {names:?}");
    let unknown: Vec<_> = names.iter().filter(|n| !samples.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "deploy/prometheus/nat64d-rules.yml names metrics nat64d does not expose: {unknown:?}"
    );
    // reason="x" / reason!~"x|y" / reason=~"x|y"
    let labels: BTreeSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut seen = 0;
    for (i, _) in rules.match_indices("reason") {
        let rest = rules[i + "reason".len()..].trim_start_matches(['=', '!', '~']);
        let Some(v) = rest.strip_prefix('"') else {
            continue;
        };
        let v = v.split('"').next().unwrap_or("");
        for r in v.split('|') {
            seen += 1;
            assert!(
                labels.contains(r),
                "the rules name drop reason {r:?}, which nat64d does not have"
            );
        }
    }
    assert!(
        seen > 0,
        "the rules name no drop reason (the check lost its input)"
    );
}

#[test]
fn every_toml_block_in_the_doc_is_a_valid_configuration() {
    let doc = doc();
    let mut n = 0;
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("```toml\n") {
        let body = &rest[i + "```toml\n".len()..];
        let end = body.find("\n```").expect("an unclosed ```toml block");
        let block = &body[..end + 1];
        n += 1;
        let line = doc[..doc.len() - body.len()].lines().count() + 1;
        if let Err(e) = nat64d::config::parse(Path::new("docs/operations.md"), block) {
            panic!("docs/operations.md line {line}: the toml block is refused: {e}");
        }
        rest = &body[end..];
    }
    assert!(n >= 3, "only {n} toml blocks found");
}
