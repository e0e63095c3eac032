//! The Prometheus text writer: text format 0.0.4 and OpenMetrics 1.0.0, used by every
//! `/metrics` gpuscope serves (the agent's signals, its self metrics, the collector's findings).
//!
//! The writer appends to a `String` the caller owns, so a scrape reuses one buffer; label values
//! are borrowed text or numbers, written in place without allocating per series.

use std::fmt::Write as _;

/// Exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The Content-Type header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type a metric family declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A monotonic count; its samples end in `_total`, which OpenMetrics leaves out of the family.
    Counter,
    /// Identity carried in labels, value 1; samples end in `_info`. Text 0.0.4 has no info type,
    /// so it is declared a gauge there.
    Info,
    /// A value of unknown type (`untyped` in text 0.0.4).
    Unknown,
}

impl Kind {
    /// The TYPE keyword in `format`.
    pub fn keyword(self, format: Format) -> &'static str {
        match (self, format) {
            (Kind::Gauge, _) | (Kind::Info, Format::Text) => "gauge",
            (Kind::Counter, _) => "counter",
            (Kind::Info, Format::OpenMetrics) => "info",
            (Kind::Unknown, Format::Text) => "untyped",
            (Kind::Unknown, Format::OpenMetrics) => "unknown",
        }
    }

    /// The family name of samples called `sample` in `format`: OpenMetrics names counter and info
    /// families without their `_total` / `_info` suffix.
    pub fn family(self, sample: &str, format: Format) -> &str {
        match (self, format) {
            (Kind::Counter, Format::OpenMetrics) => sample.strip_suffix("_total").unwrap_or(sample),
            (Kind::Info, Format::OpenMetrics) => sample.strip_suffix("_info").unwrap_or(sample),
            _ => sample,
        }
    }
}

/// A label value: borrowed text (escaped when written) or a number (written as decimal digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelValue<'a> {
    /// Text, escaped as the formats require.
    Text(&'a str),
    /// A non-negative integer: an index, an id, a code.
    Number(u64),
}

impl LabelValue<'_> {
    /// The value as an integer: a number, or text that parses as one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            LabelValue::Text(t) => t.parse().ok(),
            LabelValue::Number(n) => Some(*n),
        }
    }

    /// Appends the value to `out` (text escaped).
    fn write(&self, out: &mut String) {
        match self {
            LabelValue::Text(t) => escape(t, out),
            LabelValue::Number(n) => push_u64(*n, out),
        }
    }
}

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelValue::Text(t) => f.write_str(t),
            LabelValue::Number(n) => write!(f, "{n}"),
        }
    }
}

impl<'a> From<&'a str> for LabelValue<'a> {
    fn from(v: &'a str) -> Self {
        LabelValue::Text(v)
    }
}

impl<'a> From<&'a String> for LabelValue<'a> {
    fn from(v: &'a String) -> Self {
        LabelValue::Text(v)
    }
}

impl From<u32> for LabelValue<'_> {
    fn from(v: u32) -> Self {
        LabelValue::Number(u64::from(v))
    }
}

impl From<u64> for LabelValue<'_> {
    fn from(v: u64) -> Self {
        LabelValue::Number(v)
    }
}

/// Appends `v` with backslash, double quote and newline escaped, as both formats require.
fn escape(v: &str, out: &mut String) {
    // Most label values need no escaping: copy the runs between special characters whole (a
    // scrape writes hundreds of kilobytes of label text; pushing it char by char was a third of
    // the encoder's time). The special characters are ASCII, so every split is a char boundary.
    let mut rest = v;
    while let Some(i) = rest.bytes().position(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Appends the decimal digits of `n` without going through `fmt` (label values and integral
/// sample values are most of a scrape's numbers).
fn push_u64(mut n: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends a sample value: shortest round-trip decimal, `NaN`, `+Inf`, `-Inf`.
fn value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Whole numbers (counts, bytes, states) print exactly as `{v}` would, without `fmt`.
        if v < 0.0 {
            out.push('-');
        }
        push_u64(v.abs() as u64, out);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes metric families into a `String`: [`Writer::header`] once per family, then
/// [`Writer::sample`] (or [`Writer::series`]) per series, then [`Writer::finish`].
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut String,
    format: Format,
    extra: &'a [(String, String)],
}

impl<'a> Writer<'a> {
    /// A writer appending to `out` in `format`.
    pub fn new(out: &'a mut String, format: Format) -> Self {
        Writer { out, format, extra: &[] }
    }

    /// Appends these labels (node labels: cluster, rack, …) to every series, after its own.
    pub fn with_labels(self, extra: &'a [(String, String)]) -> Self {
        Writer { extra, ..self }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// HELP and TYPE lines of a family; `name` is the sample name (`…_total` for counters,
    /// `…_info` for info), the family name is derived from it as the format wants.
    pub fn header(&mut self, name: &str, kind: Kind, help: &str) {
        let family = kind.family(name, self.format);
        let keyword = kind.keyword(self.format);
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {keyword}");
    }

    /// One sample line: `name{labels…,extra…} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, LabelValue<'_>)], value: f64) {
        let mut s = self.series(name);
        for (k, v) in labels {
            s = s.label(k, *v);
        }
        s.value(value);
    }

    /// One sample line built label by label (for callers whose labels vary in number); it is
    /// complete once [`Series::value`] is called.
    pub fn series(&mut self, name: &str) -> Series<'_, 'a> {
        self.out.push_str(name);
        Series { w: self, first: true }
    }

    /// Ends the exposition: OpenMetrics requires a final `# EOF`.
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }
}

/// A sample line being written; see [`Writer::series`].
#[must_use = "a series line is incomplete until `value` is called"]
#[derive(Debug)]
pub struct Series<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
}

impl Series<'_, '_> {
    /// Appends one label.
    pub fn label<'v>(mut self, key: &str, value: impl Into<LabelValue<'v>>) -> Self {
        let out = &mut *self.w.out;
        out.push(if self.first { '{' } else { ',' });
        self.first = false;
        out.push_str(key);
        out.push_str("=\"");
        value.into().write(out);
        out.push('"');
        self
    }

    /// Appends the writer's extra labels and the value, ending the line.
    pub fn value(mut self, v: f64) {
        let extra = self.w.extra;
        for (k, val) in extra {
            self = self.label(k, val);
        }
        let out = &mut *self.w.out;
        if !self.first {
            out.push('}');
        }
        out.push(' ');
        value(v, out);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(format: Format, f: impl FnOnce(&mut Writer<'_>)) -> String {
        let mut out = String::new();
        let extra = [("cluster".to_string(), "c\"1".to_string())];
        let mut w = Writer::new(&mut out, format).with_labels(&extra);
        f(&mut w);
        w.finish();
        out
    }

    fn families(w: &mut Writer<'_>) {
        w.header("jobs_total", Kind::Counter, "Jobs run.");
        w.sample("jobs_total", &[("queue", "a\\b\nc".into()), ("worker", 7u32.into())], 3.0);
        w.header("build_info", Kind::Info, "Build.");
        w.sample("build_info", &[("version", "1.0".into())], 1.0);
        w.header("temperature_celsius", Kind::Gauge, "Heat.");
        w.series("temperature_celsius").value(f64::NAN);
        w.series("temperature_celsius").label("sensor", "x").value(f64::INFINITY);
        w.header("legacy", Kind::Unknown, "Old.");
        w.sample("legacy", &[], -0.5);
    }

    #[test]
    fn escaping_and_numbers_match_the_formats() {
        let mut out = String::new();
        for v in ["plain", "", "a\\b\"c\nd", "\n\n", "ünï\"cödé", "end\\"] {
            escape(v, &mut out);
            out.push('|');
        }
        assert_eq!(out, "plain||a\\\\b\\\"c\\nd|\\n\\n|ünï\\\"cödé|end\\\\|");
        for v in [0.0, -0.0, 1.0, -3.0, 42.5, 1e14, 999_999_999_999_999.0, 1e15, 1e21, 0.1, -1e-7, u32::MAX as f64] {
            let mut fast = String::new();
            value(v, &mut fast);
            assert_eq!(fast, format!("{v}"), "{v}");
        }
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            let mut fast = String::new();
            push_u64(n, &mut fast);
            assert_eq!(fast, n.to_string());
        }
    }

    #[test]
    fn text_format() {
        assert_eq!(
            write(Format::Text, families),
            "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\n\
             jobs_total{queue=\"a\\\\b\\nc\",worker=\"7\",cluster=\"c\\\"1\"} 3\n\
             # HELP build_info Build.\n# TYPE build_info gauge\n\
             build_info{version=\"1.0\",cluster=\"c\\\"1\"} 1\n\
             # HELP temperature_celsius Heat.\n# TYPE temperature_celsius gauge\n\
             temperature_celsius{cluster=\"c\\\"1\"} NaN\n\
             temperature_celsius{sensor=\"x\",cluster=\"c\\\"1\"} +Inf\n\
             # HELP legacy Old.\n# TYPE legacy untyped\n\
             legacy{cluster=\"c\\\"1\"} -0.5\n"
        );
    }

    #[test]
    fn openmetrics_names_families_and_ends_with_eof() {
        let t = write(Format::OpenMetrics, families);
        assert!(t.starts_with("# HELP jobs Jobs run.\n# TYPE jobs counter\njobs_total{"), "{t}");
        assert!(t.contains("# HELP build Build.\n# TYPE build info\nbuild_info{"), "{t}");
        assert!(t.contains("# TYPE temperature_celsius gauge\n"), "{t}");
        assert!(t.contains("# TYPE legacy unknown\n"), "{t}");
        assert!(t.ends_with("} -0.5\n# EOF\n"), "{t}");
    }

    #[test]
    fn no_labels_no_braces() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out, Format::Text);
        w.sample("up", &[], 1.0);
        w.series("scrapes_total").value(12.0);
        w.finish();
        assert_eq!(out, "up 1\nscrapes_total 12\n");
    }

    #[test]
    fn label_values() {
        assert_eq!(LabelValue::Text("79").as_u64(), Some(79));
        assert_eq!(LabelValue::Number(79).as_u64(), Some(79));
        assert_eq!(LabelValue::Text("gpu_idle").as_u64(), None);
        assert_eq!(LabelValue::Number(3).to_string(), "3");
    }
}
