//! `[fastpath]` parsing: defaults, the accepted form, and file:line errors.

use nat64d::config::{parse, ConfigError};
use std::path::Path;

const BASE: &str = "mode = \"siit\"\npool6 = [\"64:ff9b::/96\"]\n";

fn parse_str(extra: &str) -> Result<nat64d::config::Config, ConfigError> {
    parse(Path::new("t.toml"), &format!("{BASE}{extra}"))
}

fn err_line_key(extra: &str) -> (usize, String, String) {
    match parse_str(extra) {
        Err(ConfigError::Invalid {
            line, key, reason, ..
        }) => (line, key, reason),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn off_by_default() {
    let c = parse_str("").unwrap();
    assert!(!c.fastpath.enabled);
    assert!(c.fastpath.ipv6_interfaces.is_empty());
}

#[test]
fn accepted() {
    let c = parse_str(
        "[fastpath]\nenabled = true\nipv6_interfaces = [\"eth0\"]\nipv4_interfaces = [\"eth1\", \"eth2\"]\n",
    )
    .unwrap();
    assert!(c.fastpath.enabled);
    assert_eq!(c.fastpath.ipv6_interfaces, ["eth0"]);
    assert_eq!(c.fastpath.ipv4_interfaces, ["eth1", "eth2"]);
}

#[test]
fn errors_name_line_and_key() {
    let (line, key, _) = err_line_key(
        "[fastpath]\nenabled = true\nipv6_interfaces = [\"eth0\"]\nipv4_interfaces = [\"a/b\"]\n",
    );
    assert_eq!((line, key.as_str()), (6, "fastpath.ipv4_interfaces"));
    let (line, key, reason) =
        err_line_key("[fastpath]\nenabled = true\nipv6_interfaces = [\"eth0\"]\n");
    assert_eq!((line, key.as_str()), (3, "fastpath.enabled"));
    assert!(reason.contains("ipv4_interfaces"), "{reason}");
    let (_, key, _) =
        err_line_key("[fastpath]\nipv6_interfaces = [\"eth0\"]\nipv4_interfaces = [\"eth0\"]\n");
    assert_eq!(key, "fastpath");
    let (line, _, _) = err_line_key("[fastpath]\nenable = true\n");
    assert_eq!(line, 4);
}
