//! Config file parsing and validation: never panics, whatever the text;
//! errors say what is wrong, and a line they name is inside the text.
//!
//! The module is registry-bin's own source, compiled here by path: it uses
//! only serde, serde_yaml_ng, http, url and thiserror (and the plain
//! notification settings it builds), and depending on registry-bin
//! would build its whole server (hyper, rustls, tokio) into every fuzz run.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../registry-bin/src/config/mod.rs"]
mod config;

/// The notification settings the config module builds: plain data, no IO.
#[allow(dead_code)]
#[path = "../../registry-bin/src/notify/settings.rs"]
pub mod notify_settings;

/// Where the config module looks for them.
mod notify {
    pub use super::notify_settings as settings;
}

use config::{parse_str, ConfigError, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match parse_str(text) {
        Ok(config) => {
            if let Err(e) = Settings::from_config(&config) {
                assert!(!e.to_string().is_empty());
            }
        }
        Err(ConfigError::File { message, line, .. }) => {
            assert!(!message.is_empty());
            if let Some(line) = line {
                // YAML (1.1, as libyaml reads it) also breaks lines at \r,
                // NEL, LS and PS; counting each bounds \r\n too.
                let breaks = text
                    .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
                    .count();
                assert!(
                    line >= 1 && line <= breaks + 2,
                    "line {line} of {breaks} breaks"
                );
            }
        }
        Err(other) => panic!("parsing text gave a non-file error: {other}"),
    }
});
