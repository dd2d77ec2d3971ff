//! Fuzzes the exposition parser over arbitrary bodies in both formats, decoding the labels
//! of every sample it yields: nothing may panic, and a yielded series must decode or fail
//! with an error, never loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The server is a binary crate; the parser is self-contained, so the target compiles it in.
#[allow(unused)]
#[path = "../../src/scrape/parser/mod.rs"]
mod parser;

use parser::{Entry, Format, Parser};

fuzz_target!(|body: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let mut p = Parser::new(body, format);
        let mut labels = Vec::new();
        let mut entries = 0usize;
        while let Some(entry) = p.next() {
            entries += 1;
            assert!(entries <= body.len() + 1, "more entries than lines");
            if let Ok(Entry::Sample { series, .. }) = entry {
                assert!(!series.is_empty());
                let _ = p.labels(series, &mut labels);
            }
        }
    }
    let _ = parser::Format::from_content_type(&String::from_utf8_lossy(body), None);
});
