//! The fuzz targets' properties (fuzz/fuzz_targets/config_parse.rs, control_request.rs) run as
//! proptests in `cargo test`: the config parser and the control-socket request parser never
//! panic; a refused config names a line inside the file; an accepted request round-trips.

use nat64d::config::{self, ConfigError};
use nat64d::nat64_ctl::Request;
use proptest::prelude::*;
use std::path::Path;

/// Text shaped like a config: keys, tables, values and the punctuation that breaks them.
fn config_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("mode = \"nat64\"\n".to_string()),
        Just("mode = \"siit\"\n".to_string()),
        Just("pool6 = [\"64:ff9b::/96\"]\n".to_string()),
        Just("[tun]\n".to_string()),
        Just("[siit]\n".to_string()),
        Just("[nat64.pool4]\n".to_string()),
        Just("addresses = [\"192.0.2.1\"]\n".to_string()),
        Just("eamt = [{ ipv4 = \"192.0.2.2\", ipv6 = \"2001:db8::2\" }]\n".to_string()),
        Just("[log]\nlevel = ".to_string()),
        Just("mtu = ".to_string()),
        "[0-9]{1,25}\n",
        "\"[ -~]{0,20}\"\n",
        "[\\[\\]{}=,\"'#\n]{1,4}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_config_parser_never_panics_and_names_a_real_line(text in config_like()) {
        match config::parse(Path::new("f.toml"), &text) {
            Ok(_) => {}
            Err(ConfigError::Invalid { line, key, .. }) => {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line}");
                prop_assert!(!key.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn the_control_request_parser_never_panics(line in prop_oneof![
        any::<String>(),
        "(sessions|bib|counts)( (proto|v6|v4|limit|x)=[ -~]{0,12}){0,5}",
    ]) {
        if let Ok(r) = Request::parse(&line) {
            prop_assert_eq!(Request::parse(&r.to_line()), Ok(r));
        }
    }
}
