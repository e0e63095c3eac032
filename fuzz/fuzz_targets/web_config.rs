//! The exporter-toolkit web configuration file: any text parses to a configuration or an error
//! naming the key, and a loaded configuration judges any Authorization header without panicking.
#![no_main]

use gpuscope_exporters::prometheus::web_config::WebConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (config, header) = text.split_once('\u{0}').unwrap_or((text, "Basic cHJvbTpzM2NyZXQ="));
    if let Ok(cfg) = WebConfig::parse(config, std::path::Path::new("/nonexistent/web.yml")) {
        let _ = cfg.admits(Some(header));
    }
});
