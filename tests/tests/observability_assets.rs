//! The dashboards and alert rules of deploy/ checked against promtool and the real server: the
//! rules pass `promtool check rules` and their unit tests, every dashboard query parses, and every
//! metric and label the dashboards and the rules name is one that `/metrics` really exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sovereign_e2e::*;

/// Prometheus alert rules, relative to the repository root.
const ALERT_RULES: &str = "deploy/prometheus/sovereign-s3-alerts.yml";
/// promtool unit tests of [`ALERT_RULES`].
const ALERT_RULE_TESTS: &str = "deploy/prometheus/sovereign-s3-alerts.test.yml";
/// Grafana dashboards, relative to the repository root.
const DASHBOARDS: &[&str] = &["deploy/grafana/sovereign-s3-gateway.json", "deploy/grafana/sovereign-s3-storage.json"];
/// Every metric of ours starts with this; `up` and other Prometheus series are not ours to check.
const METRIC_PREFIX: &str = "sovereign_s3_";
/// Series a histogram is exposed as, besides its `# TYPE` name.
const HISTOGRAM_SERIES_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];
/// The datasource every panel queries: the dashboard input / variable Grafana substitutes.
const DATASOURCE_UID: &str = "${DS_PROMETHEUS}";
/// Labels Prometheus adds at scrape time: never in the server's exposition.
const TARGET_LABELS: &[&str] = &["job", "instance"];
/// Label values queries filter on that the requests of this test cannot produce.
const VALUES_NOT_PRODUCED: &[(&str, &str)] = &[("status_class", "3xx"), ("status_class", "5xx")];
/// Grafana's built-in interval variables, and a value that makes their queries parse.
const GRAFANA_INTERVALS: &[(&str, &str)] = &[("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h")];
/// How long the server may take to expose every metric (gauges refreshed in the background).
const METRICS_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two scrapes while metrics are missing.
const SCRAPE_INTERVAL: Duration = Duration::from_millis(500);

const BUCKET: &str = "observability";

#[test]
fn alert_rules_pass_promtool_check() {
    run_promtool(&["check", "rules", ALERT_RULES]);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    run_promtool(&["test", "rules", ALERT_RULE_TESTS]);
}

#[test]
fn dashboards_query_the_prometheus_datasource_variable() {
    for path in DASHBOARDS {
        let dashboard = read_dashboard(path);
        for key in ["uid", "title"] {
            assert!(dashboard[key].as_str().is_some_and(|s| !s.is_empty()), "{path}: no {key}");
        }
        let variables = dashboard["templating"]["list"].as_array();
        assert!(
            variables
                .is_some_and(|list| list.iter().any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource")),
            "{path}: no datasource variable DS_PROMETHEUS"
        );
        let panels = panels(&dashboard);
        assert!(!panels.is_empty(), "{path}: no panels");
        let mut ids = BTreeSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(ids.insert(panel["id"].to_string()), "{path}: duplicate panel id in {title:?}");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], DATASOURCE_UID,
                "{path}: panel {title:?} does not query {DATASOURCE_UID}"
            );
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{path}: panel {title:?} has no query");
            for target in targets {
                assert!(
                    target["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{path}: panel {title:?} has a target without expr"
                );
            }
        }
    }
}

/// Every panel query, its Grafana variables replaced, parses as PromQL: promtool checks them as
/// recording rules named after the dashboard and panel.
#[test]
fn dashboard_queries_are_valid_promql() {
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for path in DASHBOARDS {
        let dashboard = read_dashboard(path);
        let stem = Path::new(path).file_stem().and_then(|s| s.to_str()).expect("dashboard file name").replace('-', "_");
        let variables: Vec<String> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let promql = substitute_grafana_variables(expr, &variables);
                assert!(!promql.contains('$'), "{path}: unknown Grafana variable in {expr:?}");
                let record =
                    format!("dashboard:{stem}:panel_{}_{}", panel["id"], target["refId"].as_str().unwrap_or("query"));
                let quoted = serde_json::to_string(&promql).expect("quote query");
                rules.push_str(&format!("      - record: {record}\n        expr: {quoted}\n"));
            }
        }
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let rules_path = dir.path().join("dashboard-queries.yml");
    fs::write(&rules_path, rules).expect("write dashboard queries as rules");
    run_promtool(&["check", "rules", rules_path.to_str().expect("UTF-8 path")]);
}

/// Starts a 4-drive server, sends requests so that labelled series exist, scrapes `/metrics` and
/// checks every metric the dashboards and the alert rules name against it, with the labels their
/// queries select and group by.
#[tokio::test]
async fn dashboards_and_alerts_name_only_exported_metrics() {
    let mut queries = Vec::new();
    for path in DASHBOARDS {
        let dashboard = read_dashboard(path);
        // Every string: panel queries, but also variable queries and descriptions naming metrics.
        let mut names = BTreeSet::new();
        collect_metric_names(&dashboard, &mut names);
        queries.push(Query::names_only(path.to_string(), names));
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let title = panel["title"].as_str().unwrap_or_default();
                    queries.push(Query::promql(format!("{path}, panel {title:?}"), expr, true));
                }
            }
        }
    }
    queries.push(Query::promql(ALERT_RULES.to_owned(), &read_asset(ALERT_RULES), true));
    // The unit tests' input series should look like real ones, but their values are made up.
    queries.push(Query::promql(ALERT_RULE_TESTS.to_owned(), &read_asset(ALERT_RULE_TESTS), false));

    let server = Server::start(4);
    send_requests_of_every_kind(&server).await;

    let deadline = Instant::now() + METRICS_TIMEOUT;
    let (exposition, problems) = loop {
        let exposition = scrape_metrics(&server);
        let problems: Vec<String> = queries.iter().flat_map(|query| query.problems(&exposition)).collect();
        if problems.is_empty() || Instant::now() >= deadline {
            break (exposition, problems);
        }
        thread::sleep(SCRAPE_INTERVAL);
    };
    assert!(
        problems.is_empty(),
        "the dashboards and alert rules use metrics or labels that /metrics does not export:\n  {}\n\
         metrics exported: {:?}",
        problems.join("\n  "),
        exposition.types.keys().collect::<Vec<_>>()
    );
}

/// Creates a bucket, PUTs and GETs an inline and a sharded object, GETs a missing key and lists:
/// series labelled by API, status class, error code and drive then exist.
async fn send_requests_of_every_kind(server: &Server) {
    let s3 = server.client();
    create_bucket(&s3, BUCKET).await;
    let inline = random_bytes(1024);
    // Above the inline threshold: stored as shard files, so shard reads and writes are timed.
    let sharded = random_bytes(2 * INLINE_THRESHOLD_BYTES);
    for (key, data) in [("inline", &inline), ("sharded", &sharded)] {
        put_bytes(&s3, BUCKET, key, data).await;
        let read = get_bytes(&s3, BUCKET, key).await;
        assert_same_bytes(&read, data, key);
    }
    assert_s3_error(s3.get_object().bucket(BUCKET).key("missing").send().await, 404, &["NoSuchKey"]);
    assert_eq!(list_keys(&s3, BUCKET).await, ["inline", "sharded"]);
}

/// What `GET /metrics` exports.
struct Exposition {
    /// Metric name (as in `# TYPE`) to its type.
    types: BTreeMap<String, String>,
    /// Series name (with `_bucket`, `_sum`... suffixes) to the label sets of its samples.
    samples: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Exposition {
    /// Whether `name` is a metric, or a series of a histogram or summary (`<metric>_bucket`...).
    fn exports(&self, name: &str) -> bool {
        self.types.contains_key(name)
            || HISTOGRAM_SERIES_SUFFIXES.iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .and_then(|metric| self.types.get(metric))
                    .is_some_and(|kind| kind == "histogram" || kind == "summary")
            })
    }

    /// Label sets of the samples of series `name`; of its `_bucket` series for a bare histogram.
    fn label_sets(&self, name: &str) -> &[BTreeMap<String, String>] {
        self.samples
            .get(name)
            .or_else(|| self.samples.get(&format!("{name}_bucket")))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn has_label(&self, name: &str, label: &str) -> bool {
        self.label_sets(name).iter().any(|set| set.contains_key(label))
    }

    fn has_label_value(&self, name: &str, label: &str, value: &str) -> bool {
        self.label_sets(name).iter().any(|set| set.get(label).is_some_and(|v| v == value))
    }
}

/// Something that names metrics: a PromQL query, a rule file, or a dashboard's strings.
struct Query {
    /// Where it comes from, for messages.
    origin: String,
    metrics: BTreeSet<String>,
    /// Label matchers of selectors: (metric, label, operator, value).
    matchers: Vec<(String, String, String, String)>,
    /// Labels of `by`, `without`, `on` and `ignoring` clauses.
    grouping_labels: BTreeSet<String>,
    /// Whether `label="value"` matchers must match an exported series.
    check_values: bool,
}

impl Query {
    fn names_only(origin: String, metrics: BTreeSet<String>) -> Query {
        Query { origin, metrics, matchers: Vec::new(), grouping_labels: BTreeSet::new(), check_values: false }
    }

    fn promql(origin: String, text: &str, check_values: bool) -> Query {
        let mut metrics = BTreeSet::new();
        let mut matchers = Vec::new();
        for (name, selector) in metric_references(text) {
            for (label, op, value) in selector {
                matchers.push((name.clone(), label, op, value));
            }
            metrics.insert(name);
        }
        Query { origin, metrics, matchers, grouping_labels: grouping_labels(text), check_values }
    }

    /// What this query names that the exposition does not have.
    fn problems(&self, exposition: &Exposition) -> Vec<String> {
        let origin = &self.origin;
        let mut problems: Vec<String> = self
            .metrics
            .iter()
            .filter(|name| !exposition.exports(name))
            .map(|name| format!("{origin}: metric {name} is not exported"))
            .collect();
        for (name, label, op, value) in &self.matchers {
            if !exposition.exports(name) || TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            if !exposition.has_label(name, label) {
                problems.push(format!("{origin}: {name} has no label {label}"));
            } else if self.check_values
                && op == "="
                && !value.contains('$')
                && !VALUES_NOT_PRODUCED.contains(&(label.as_str(), value.as_str()))
                && !exposition.has_label_value(name, label, value)
            {
                problems.push(format!("{origin}: no {name} series has {label}=\"{value}\""));
            }
        }
        for label in &self.grouping_labels {
            let exported: Vec<&String> = self.metrics.iter().filter(|m| exposition.exports(m)).collect();
            if !TARGET_LABELS.contains(&label.as_str())
                && !exported.is_empty()
                && !exported.iter().any(|m| exposition.has_label(m, label))
            {
                problems.push(format!("{origin}: groups by {label}, a label none of {exported:?} has"));
            }
        }
        problems
    }
}

/// Runs promtool from the repository root and fails with its output unless it succeeds.
fn run_promtool(args: &[&str]) {
    let output: Output = match Command::new("promtool").args(args).current_dir(repo_root()).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed, and it is what validates deploy/prometheus/: install the \
             Debian package `prometheus` (apt-get install prometheus)"
        ),
        Err(e) => panic!("run promtool {args:?}: {e}"),
    };
    assert!(
        output.status.success(),
        "promtool {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `GET /metrics` of `server`, parsed; fails unless it answers 200.
fn scrape_metrics(server: &Server) -> Exposition {
    let reply = curl(&[&format!("{}/metrics", server.url())]);
    assert_eq!(reply.status, 200, "GET /metrics answered {}: {}", reply.status, reply.text());
    parse_exposition(&reply.text())
}

/// Parses the Prometheus text format: `# TYPE` lines and the series names and labels of samples.
fn parse_exposition(text: &str) -> Exposition {
    let mut types = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let mut words = declaration.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                types.insert(name.to_owned(), kind.to_owned());
            }
        } else if !line.starts_with('#') {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = match line[name_end..].strip_prefix('{') {
                Some(rest) => parse_label_pairs(rest),
                None => BTreeMap::new(),
            };
            samples.entry(line[..name_end].to_owned()).or_default().push(labels);
        }
    }
    Exposition { types, samples }
}

/// Parses `name="value",...}` (the text after a sample's `{`), unescaping the values.
fn parse_label_pairs(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        if chars.peek().is_none_or(|c| *c == '}') {
            return labels;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        chars.next(); // '='
        chars.next(); // opening '"'
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(escaped) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        labels.insert(name.trim().to_owned(), value);
    }
}

/// One label matcher of a selector: (label, operator, value).
type Matcher = (String, String, String);

/// Every reference to one of our metrics in `text`, with the matchers of its `{...}` selector.
fn metric_references(text: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut references = Vec::new();
    for (start, _) in text.match_indices(METRIC_PREFIX) {
        if text[..start].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let name_len = text[start..].find(|c| !is_name_char(c)).unwrap_or(text.len() - start);
        let name = &text[start..start + name_len];
        let after = &text[start + name_len..];
        let selector = match after.strip_prefix('{') {
            Some(body) => parse_matchers(&body[..body.find('}').unwrap_or(body.len())]),
            None => Vec::new(),
        };
        references.push((name.to_owned(), selector));
    }
    references
}

/// Parses the matchers of a selector body such as `api="GetObject", status_class=~"4xx|5xx"`.
fn parse_matchers(body: &str) -> Vec<(String, String, String)> {
    let mut matchers = Vec::new();
    let mut rest = body.trim_start_matches([',', ' ']);
    while !rest.is_empty() {
        let label_len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        let label = rest[..label_len].to_owned();
        let after_label = rest[label_len..].trim_start();
        let op = ["=~", "!~", "!=", "="].into_iter().find(|op| after_label.starts_with(op)).unwrap_or("");
        let after_op = after_label[op.len()..].trim_start();
        let quote = after_op.chars().next().unwrap_or('"');
        let value_body = after_op.get(1..).unwrap_or("");
        let value_len = value_body.find(quote).unwrap_or(value_body.len());
        if !label.is_empty() && !op.is_empty() {
            matchers.push((label, op.to_owned(), value_body[..value_len].to_owned()));
        } else {
            break;
        }
        rest = value_body.get(value_len + 1..).unwrap_or("").trim_start_matches([',', ' ']);
    }
    matchers
}

/// Labels named in `by (...)`, `without (...)`, `on (...)` and `ignoring (...)` clauses.
fn grouping_labels(text: &str) -> BTreeSet<String> {
    const CLAUSES: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let mut labels = BTreeSet::new();
    let mut rest = text;
    while let Some(word_start) = rest.find(is_name_char) {
        let word_len = rest[word_start..].find(|c| !is_name_char(c)).unwrap_or(rest.len() - word_start);
        let word = &rest[word_start..word_start + word_len];
        rest = &rest[word_start + word_len..];
        if CLAUSES.contains(&word) {
            if let Some(list) = rest.trim_start().strip_prefix('(') {
                let list = &list[..list.find(')').unwrap_or(list.len())];
                labels.extend(list.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
            }
        }
    }
    labels
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Collects the metric names in every string of a dashboard.
fn collect_metric_names(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => names.extend(metric_references(text).into_iter().map(|(n, _)| n)),
        Value::Array(items) => items.iter().for_each(|v| collect_metric_names(v, names)),
        Value::Object(fields) => fields.values().for_each(|v| collect_metric_names(v, names)),
        _ => {}
    }
}

/// Every panel of a dashboard, rows and the panels inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Replaces Grafana's interval variables and the dashboard's own (`$instance`: any) so that the
/// query is plain PromQL.
fn substitute_grafana_variables(expr: &str, variables: &[String]) -> String {
    let mut promql = expr.to_owned();
    for (variable, value) in GRAFANA_INTERVALS {
        promql = promql.replace(variable, value);
    }
    // Longest names first, so that `$instance` does not eat the start of `$instance_group`.
    let mut variables: Vec<&String> = variables.iter().collect();
    variables.sort_by_key(|name| std::cmp::Reverse(name.len()));
    for name in variables {
        promql = promql.replace(&format!("${{{name}}}"), ".*").replace(&format!("${name}"), ".*");
    }
    promql
}

fn read_dashboard(path: &str) -> Value {
    serde_json::from_str(&read_asset(path)).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"))
}

fn read_asset(path: &str) -> String {
    let full = repo_root().join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// The workspace root: the parent of this package's directory. Cargo names the package directory
/// at run time too, which stays right when a shared target directory holds a binary that
/// another checkout of the same sources built.
fn repo_root() -> PathBuf {
    let package =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    package.parent().expect("tests/ lives in the workspace").to_path_buf()
}
