//! Baseline files (the reference figures kept in the repository) and the comparison of new
//! results with them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

use crate::cli::{BaselineArgs, CompareArgs};
use crate::report::{read_json, write_json, OpResult, RunResult};
use crate::units::format_micros;

/// Version tag of the baseline file format.
pub const BASELINE_FORMAT: &str = "s3-load-baseline/1";

/// Reference results, one per run name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Always `BASELINE_FORMAT`.
    pub format: String,
    /// What configuration these results stand for.
    pub note: String,
    /// The results, as `s3-load run --json` wrote them.
    pub runs: Vec<RunResult>,
}

/// `s3-load baseline`: gathers result files into a baseline file.
pub fn write_baseline(args: &BaselineArgs) -> anyhow::Result<()> {
    let runs = args.results.iter().map(|path| read_json::<RunResult>(path)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut names = BTreeSet::new();
    for run in &runs {
        ensure!(names.insert(run.name.as_str()), "two results are named {:?}: a baseline needs unique names", run.name);
    }
    let baseline = Baseline { format: BASELINE_FORMAT.into(), note: args.note.clone(), runs };
    write_json(&args.out, &baseline)?;
    eprintln!("wrote {} runs to {}", baseline.runs.len(), args.out.display());
    Ok(())
}

/// `s3-load compare`: prints the ratios; exit code 1 when a P99 regressed beyond the threshold.
pub fn compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let baseline: Baseline = read_json(&args.baseline)?;
    ensure!(
        baseline.format == BASELINE_FORMAT,
        "{} is in format {:?}, not {BASELINE_FORMAT:?}",
        args.baseline.display(),
        baseline.format
    );
    let results = args.result.iter().map(|path| read_json::<RunResult>(path)).collect::<anyhow::Result<Vec<_>>>()?;
    let (rows, unmatched) = match_rows(&baseline, &results);
    for name in &unmatched {
        eprintln!("warning: the baseline has no run named {name:?}; not compared");
    }
    if rows.is_empty() {
        bail!("no result matched a baseline run by name and operation");
    }
    print!("{}", render(&rows));
    let Some(max) = args.max_p99_regression else {
        return Ok(ExitCode::SUCCESS);
    };
    let regressions: Vec<String> = rows.iter().filter_map(|row| row.regression(max)).collect();
    for regression in &regressions {
        println!("REGRESSION {regression}");
    }
    if regressions.is_empty() {
        println!("no P99 regressed by more than {:.0}%", max * 100.0);
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// One operation of one run, in the baseline and in the new result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub base_label: String,
    pub new_label: String,
    pub base: OpResult,
    pub new: OpResult,
}

impl Row {
    /// New P99 over baseline P99 (above 1 = slower).
    pub fn p99_ratio(&self) -> Option<f64> {
        ratio(self.new.latency_us.p99 as f64, self.base.latency_us.p99 as f64)
    }

    /// Why this row fails a `max` (fraction) P99 regression threshold, if it does.
    pub fn regression(&self, max: f64) -> Option<String> {
        let what = format!("{} {}", self.name, self.new.op);
        if self.new.ok == 0 && self.base.ok > 0 {
            return Some(format!("{what}: no successful request ({} errors)", self.new.error_count()));
        }
        let ratio = self.p99_ratio()?;
        (ratio > 1.0 + max).then(|| {
            format!(
                "{what}: P99 {} vs {} in the baseline, ×{ratio:.2} (allowed ×{:.2})",
                format_micros(self.new.latency_us.p99 as f64),
                format_micros(self.base.latency_us.p99 as f64),
                1.0 + max
            )
        })
    }
}

fn ratio(new: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| new / base)
}

/// Pairs each result's operations with the baseline run of the same name; also returns the
/// names the baseline lacks.
pub fn match_rows(baseline: &Baseline, results: &[RunResult]) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for result in results {
        let Some(base_run) = baseline.runs.iter().find(|run| run.name == result.name) else {
            unmatched.push(result.name.clone());
            continue;
        };
        for new in &result.ops {
            if let Some(base) = base_run.ops.iter().find(|op| op.op == new.op) {
                rows.push(Row {
                    name: result.name.clone(),
                    base_label: base_run.label.clone(),
                    new_label: result.label.clone(),
                    base: base.clone(),
                    new: new.clone(),
                });
            }
        }
    }
    (rows, unmatched)
}

/// The comparison table: absolute figures of both sides and new/base ratios.
pub fn render(rows: &[Row]) -> String {
    let labels = |label: fn(&Row) -> &str| {
        rows.iter().map(label).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
    };
    let mut out = format!(
        "base = {}; new = {}; ratio = new / base (latency: above 1 is slower; throughput: above 1 is faster)\n",
        labels(|row| &row.base_label),
        labels(|row| &row.new_label)
    );
    let _ = writeln!(
        out,
        "{:<22} {:<6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>10} {:>10} {:>6} {:>8} {:>8} {:>6}  errors",
        "run",
        "op",
        "p50 base",
        "p50 new",
        "ratio",
        "p99 base",
        "p99 new",
        "ratio",
        "ops/s base",
        "ops/s new",
        "ratio",
        "MiB/s b",
        "MiB/s n",
        "ratio"
    );
    for row in rows {
        let (base, new) = (&row.base, &row.new);
        let _ = writeln!(
            out,
            "{:<22} {:<6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>10.1} {:>10.1} {:>6} {:>8.1} {:>8.1} {:>6}  {}/{}",
            row.name,
            new.op,
            format_micros(base.latency_us.p50 as f64),
            format_micros(new.latency_us.p50 as f64),
            format_ratio(ratio(new.latency_us.p50 as f64, base.latency_us.p50 as f64)),
            format_micros(base.latency_us.p99 as f64),
            format_micros(new.latency_us.p99 as f64),
            format_ratio(row.p99_ratio()),
            base.ops_per_s,
            new.ops_per_s,
            format_ratio(ratio(new.ops_per_s, base.ops_per_s)),
            base.mib_per_s,
            new.mib_per_s,
            format_ratio(ratio(new.mib_per_s, base.mib_per_s)),
            base.error_count(),
            new.error_count(),
        );
    }
    out
}

fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |ratio| format!("{ratio:.2}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::report::{Latency, Machine, Workload};

    fn op(name: &str, p99: u64, ok: u64) -> OpResult {
        OpResult {
            op: name.into(),
            ok,
            errors: if ok == 0 { BTreeMap::from([("503".into(), 7)]) } else { BTreeMap::new() },
            ops_per_s: ok as f64 / 10.0,
            mib_per_s: 1.0,
            latency_us: Latency { p50: p99 / 2, p90: p99, p99, p999: p99, max: p99, mean: p99 as f64 / 2.0 },
        }
    }

    fn run(name: &str, label: &str, ops: Vec<OpResult>) -> RunResult {
        RunResult {
            name: name.into(),
            label: label.into(),
            started_at: "2026-11-23T00:00:00Z".into(),
            machine: Machine { cpus: 2, cpu_model: "test".into() },
            workload: Workload {
                endpoint: "http://127.0.0.1:9000".into(),
                op: "get".into(),
                size_bytes: 4096,
                concurrency: 16,
                rate_per_s: None,
                duration_s: 10.0,
                warmup_s: 1.0,
                objects: 100,
            },
            elapsed_s: 10.0,
            ops,
        }
    }

    fn baseline() -> Baseline {
        Baseline {
            format: BASELINE_FORMAT.into(),
            note: "test".into(),
            runs: vec![
                run("get-4KiB-c16", "ref", vec![op("GET", 1000, 500)]),
                run("put-1MiB-c4", "ref", vec![op("PUT", 8000, 50)]),
            ],
        }
    }

    #[test]
    fn results_are_matched_by_name_and_operation() {
        let results = [
            run("get-4KiB-c16", "new", vec![op("GET", 1100, 500)]),
            run("head-4KiB-c16", "new", vec![op("HEAD", 1, 1)]),
        ];
        let (rows, unmatched) = match_rows(&baseline(), &results);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "get-4KiB-c16");
        assert_eq!(unmatched, ["head-4KiB-c16"]);
        assert!((rows[0].p99_ratio().unwrap() - 1.1).abs() < 1e-9);
    }

    #[test]
    fn p99_beyond_the_threshold_is_a_regression() {
        let row =
            |p99, ok| match_rows(&baseline(), &[run("get-4KiB-c16", "new", vec![op("GET", p99, ok)])]).0.remove(0);
        assert_eq!(row(1199, 500).regression(0.2), None);
        assert_eq!(row(500, 500).regression(0.2), None);
        let slow = row(1300, 500).regression(0.2).unwrap();
        assert!(slow.contains("×1.30") && slow.contains("get-4KiB-c16 GET"), "{slow}");
        let failing = row(0, 0).regression(0.2).unwrap();
        assert!(failing.contains("no successful request (7 errors)"), "{failing}");
    }

    #[test]
    fn the_table_shows_both_sides_and_their_ratios() {
        let (rows, _) = match_rows(&baseline(), &[run("put-1MiB-c4", "sovereign", vec![op("PUT", 4000, 100)])]);
        let table = render(&rows);
        assert!(table.starts_with("base = ref; new = sovereign;"), "{table}");
        let line = table.lines().find(|line| line.starts_with("put-1MiB-c4")).unwrap();
        assert!(line.contains("8.00 ms") && line.contains("4.00 ms") && line.contains("0.50"), "{line}");
        assert!(line.contains("2.00"), "ops/s ratio: {line}");
        assert_eq!(format_ratio(None), "-");
    }

    #[test]
    fn baselines_gather_results_and_refuse_duplicate_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        write_json(&path("a.json"), &run("get-4KiB-c16", "ref", vec![op("GET", 1000, 5)])).unwrap();
        write_json(&path("b.json"), &run("put-1MiB-c4", "ref", vec![op("PUT", 1000, 5)])).unwrap();
        let args = |results: Vec<PathBuf>| BaselineArgs { out: path("baseline.json"), note: "n".into(), results };
        write_baseline(&args(vec![path("a.json"), path("b.json")])).unwrap();
        let written: Baseline = read_json(&path("baseline.json")).unwrap();
        assert_eq!(written.format, BASELINE_FORMAT);
        assert_eq!(written.runs.len(), 2);
        assert!(write_baseline(&args(vec![path("a.json"), path("a.json")])).is_err());
    }
}
