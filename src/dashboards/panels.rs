//! Grafana panel model: the few panel kinds the dashboards use, their queries, units and
//! thresholds, and a layout that places them on Grafana's 24-column grid.

use gpuscope_core::{MetricDef, MetricKind, Unit};
use serde_json::{Value, json};

/// The datasource every panel and query uses: the dashboard's `datasource` variable.
pub fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// One PromQL query of a panel.
#[derive(Clone)]
pub struct Target {
    /// The expression, with Grafana variables (`$node`, `$__rate_interval`).
    pub expr: String,
    /// Series name in the legend (`{{gpu}}` templates).
    pub legend: String,
    /// Evaluate once at the end of the range (stat and table panels).
    pub instant: bool,
}

impl Target {
    /// A range query.
    pub fn range(expr: impl Into<String>, legend: impl Into<String>) -> Target {
        Target { expr: expr.into(), legend: legend.into(), instant: false }
    }

    /// An instant query.
    pub fn instant(expr: impl Into<String>, legend: impl Into<String>) -> Target {
        Target { expr: expr.into(), legend: legend.into(), instant: true }
    }
}

/// Threshold steps: the base colour, then (value, colour) upward.
#[derive(Clone)]
pub struct Thresholds(pub &'static str, pub Vec<(f64, &'static str)>);

impl Thresholds {
    /// Higher is worse: green, orange from `warn`, red from `crit`.
    pub fn above(warn: f64, crit: f64) -> Thresholds {
        Thresholds("green", vec![(warn, "orange"), (crit, "red")])
    }

    /// Lower is worse: red, orange from `warn`, green from `good`.
    pub fn below(warn: f64, good: f64) -> Thresholds {
        Thresholds("red", vec![(warn, "orange"), (good, "green")])
    }

    /// Any value above zero is bad (error counters, lost GPUs).
    pub fn any() -> Thresholds {
        Thresholds("green", vec![(1.0, "red")])
    }

    /// Informational only: every value is fine.
    pub fn none() -> Thresholds {
        Thresholds("green", Vec::new())
    }

    fn json(&self) -> Value {
        let mut steps = vec![json!({ "color": self.0, "value": null })];
        steps.extend(self.1.iter().map(|(v, c)| json!({ "color": c, "value": v })));
        json!({ "mode": "absolute", "steps": steps })
    }
}

/// One panel.
#[derive(Clone)]
pub struct Panel {
    /// Grafana panel type: `timeseries`, `stat`, `table`, `bargauge`, `text`.
    pub kind: &'static str,
    /// Title.
    pub title: String,
    /// What it means and what to do when it looks wrong (the panel's info tooltip).
    pub description: String,
    /// Grafana unit id (`percentunit`, `bytes`, `watt`, ...).
    pub unit: &'static str,
    /// Axis and colour range.
    pub min: Option<f64>,
    /// Axis and colour range.
    pub max: Option<f64>,
    /// Colour thresholds.
    pub thresholds: Thresholds,
    /// Queries.
    pub targets: Vec<Target>,
    /// Width in grid columns (of 24).
    pub width: u32,
    /// Height in grid rows.
    pub height: u32,
    /// Markdown of a text panel.
    pub markdown: Option<String>,
    /// Value mappings (raw JSON), e.g. 0/1 states as words.
    pub mappings: Vec<Value>,
}

impl Panel {
    /// A panel of `kind` with the defaults: half width, 8 rows high, no queries yet.
    pub fn new(kind: &'static str, title: impl Into<String>, description: impl Into<String>) -> Panel {
        Panel {
            kind,
            title: title.into(),
            description: description.into(),
            unit: "short",
            min: None,
            max: None,
            thresholds: Thresholds::none(),
            targets: Vec::new(),
            width: 12,
            height: 8,
            markdown: None,
            mappings: Vec::new(),
        }
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &'static str) -> Panel {
        self.unit = unit;
        if unit == "percentunit" {
            self.min = Some(0.0);
            self.max = Some(1.0);
        }
        self
    }

    /// Sets the thresholds.
    pub fn thresholds(mut self, t: Thresholds) -> Panel {
        self.thresholds = t;
        self
    }

    /// Adds a query.
    pub fn target(mut self, t: Target) -> Panel {
        self.targets.push(t);
        self
    }

    /// Sets the size.
    pub fn size(mut self, width: u32, height: u32) -> Panel {
        self.width = width;
        self.height = height;
        self
    }

    /// Shows 0/1 as `no`/`yes` style words.
    pub fn states(mut self, zero: &str, one: &str) -> Panel {
        self.mappings.push(json!({
            "type": "value",
            "options": { "0": { "text": zero, "index": 0 }, "1": { "text": one, "index": 1 } }
        }));
        self
    }

    /// The panel as Grafana's JSON model, with its id and place on the grid.
    pub fn json(&self, id: u32, x: u32, y: u32) -> Value {
        let mut defaults = json!({
            "unit": self.unit,
            "thresholds": self.thresholds.json(),
            "mappings": self.mappings,
            "color": { "mode": if self.kind == "timeseries" { "palette-classic" } else { "thresholds" } },
        });
        if let Some(min) = self.min {
            defaults["min"] = json!(min);
        }
        if let Some(max) = self.max {
            defaults["max"] = json!(max);
        }
        if self.kind == "timeseries" {
            defaults["custom"] = json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": false,
                "thresholdsStyle": { "mode": if self.thresholds.1.is_empty() { "off" } else { "dashed" } }
            });
        }
        let targets: Vec<Value> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = json!({
                    "refId": ref_id(i),
                    "datasource": datasource(),
                    "expr": t.expr,
                    "legendFormat": t.legend,
                    "range": !t.instant,
                    "instant": t.instant,
                    "editorMode": "code",
                });
                if self.kind == "table" {
                    v["format"] = json!("table");
                }
                v
            })
            .collect();
        let mut p = json!({
            "id": id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "gridPos": { "h": self.height, "w": self.width, "x": x, "y": y },
            "datasource": datasource(),
            "fieldConfig": { "defaults": defaults, "overrides": [] },
            "targets": targets,
            "options": self.options(),
        });
        if self.kind == "table" {
            // Instant queries come back as one frame per query with a `Time` column; merged and
            // without it they read as one table.
            p["transformations"] = json!([
                { "id": "merge", "options": {} },
                { "id": "organize", "options": { "excludeByName": { "Time": true, "__name__": true } } }
            ]);
        }
        if let Some(md) = &self.markdown {
            p["options"] = json!({ "mode": "markdown", "content": md });
            p.as_object_mut().map(|o| {
                o.remove("targets");
                o.remove("datasource")
            });
        }
        p
    }

    fn options(&self) -> Value {
        match self.kind {
            "timeseries" => json!({
                "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                "tooltip": { "mode": "multi", "sort": "desc" }
            }),
            "stat" => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "colorMode": "value",
                "graphMode": "area",
                "textMode": "auto",
                "orientation": "auto",
                "justifyMode": "auto"
            }),
            "bargauge" => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": true
            }),
            "table" => {
                json!({ "showHeader": true, "cellHeight": "sm", "footer": { "show": false, "reducer": ["sum"] } })
            }
            _ => json!({}),
        }
    }
}

/// `A`, `B`, ... as Grafana names queries.
fn ref_id(i: usize) -> String {
    let c = char::from(b'A' + (i % 26) as u8);
    if i < 26 { c.to_string() } else { format!("{c}{}", i / 26) }
}

/// A collapsible row header.
pub fn row(id: u32, title: &str, y: u32) -> Value {
    json!({
        "id": id,
        "type": "row",
        "title": title,
        "collapsed": false,
        "gridPos": { "h": 1, "w": 24, "x": 0, "y": y },
        "panels": []
    })
}

/// Rows of panels placed left to right, wrapping at 24 columns.
pub struct Layout {
    panels: Vec<Value>,
    next_id: u32,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Layout {
    /// An empty dashboard body.
    pub fn new() -> Layout {
        Layout { panels: Vec::new(), next_id: 1, x: 0, y: 0, row_height: 0 }
    }

    /// Starts a new row with a header.
    pub fn row(&mut self, title: &str) {
        self.newline();
        self.panels.push(row(self.next_id, title, self.y));
        self.next_id += 1;
        self.y += 1;
    }

    /// Places a panel.
    pub fn add(&mut self, p: Panel) {
        if self.x + p.width > 24 {
            self.newline();
        }
        self.panels.push(p.json(self.next_id, self.x, self.y));
        self.next_id += 1;
        self.x += p.width;
        self.row_height = self.row_height.max(p.height);
    }

    fn newline(&mut self) {
        if self.x > 0 {
            self.y += self.row_height;
        }
        self.x = 0;
        self.row_height = 0;
    }

    /// The panels, in order.
    pub fn into_panels(self) -> Vec<Value> {
        self.panels
    }
}

/// How a catalogue row is charted: the Grafana unit of what is shown (a counter's rate), and
/// whether the query takes the counter's rate.
pub fn unit_of(m: &MetricDef) -> (&'static str, bool) {
    let rate = m.kind == MetricKind::Counter;
    let unit = match (m.unit, rate) {
        (Unit::Ratio, _) => "percentunit",
        (Unit::Bytes, false) => "bytes",
        (Unit::Bytes, true) | (Unit::BytesPerSecond, _) => "Bps",
        (Unit::Celsius, _) => "celsius",
        (Unit::Watts, _) | (Unit::Joules, true) => "watt",
        (Unit::Joules, false) => "joule",
        (Unit::Hertz, _) => "hertz",
        (Unit::Seconds, false) => "s",
        // CPU or busy seconds per second: a share of one core or device.
        (Unit::Seconds, true) => "percentunit",
        (Unit::Count, true) | (Unit::PerSecond, _) => "cps",
        (Unit::Count, false) | (Unit::State, _) | (Unit::Info, _) => "short",
    };
    (unit, rate)
}
