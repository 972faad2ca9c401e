//! The configuration parser on arbitrary bytes: never a panic; a refusal names a line of the file
//! and a key (tests/fuzz_props.rs runs the same property in `cargo test`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nat64d::config::{self, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ConfigError::Invalid { line, key, .. }) =
        config::parse(std::path::Path::new("f.toml"), text)
    {
        assert!(line >= 1 && line <= text.lines().count().max(1) + 1);
        assert!(!key.is_empty());
    }
});
