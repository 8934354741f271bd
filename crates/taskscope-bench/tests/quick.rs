//! The harness end to end at `--quick` sizes: every run finishes and the output is
//! well-formed. No timing is asserted anywhere: CI machines are too noisy for that.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taskscope-bench"))
        .args(args)
        .env_remove("TASKSCOPE_BIND")
        .env_remove("TASKSCOPE_RECORD")
        .output()
        .expect("the harness starts")
}

#[test]
fn quick_json_has_a_summary_and_a_finished_run_for_every_workload_and_mode() {
    let output = bench(&[
        "--quick",
        "--workloads",
        "spawn,stall-latency",
        "--modes",
        "taskscope+watch,console",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the harness failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let pairs: Vec<(String, String)> = report["summaries"]
        .as_array()
        .expect("summaries")
        .iter()
        .map(|s| (s["workload"].to_string(), s["mode"].to_string()))
        .collect();
    let expected = [
        ("spawn", "none"),
        ("spawn", "taskscope+watch"),
        ("spawn", "console"),
        // Stall latency is measured by a client of the probe: taskscope modes only.
        ("stall-latency", "taskscope+watch"),
    ]
    .map(|(w, m)| (format!("\"{w}\""), format!("\"{m}\"")));
    assert_eq!(pairs, expected);
    for run in report["runs"].as_array().expect("runs") {
        assert_eq!(run["status"], "ok", "a run did not finish: {run}");
        assert!(run["report"]["wall_ns"].as_u64() > Some(0), "{run}");
        assert!(run["peak_rss_bytes"].as_u64() > Some(0), "{run}");
    }
    let stalls = report["summaries"][3]["stall_latency"].clone();
    assert_eq!(stalls["stalls"], 3, "{stalls}");
    assert_eq!(
        stalls["missed"], 0,
        "the client heard of every stall: {stalls}"
    );
    assert!(report["summaries"][1]["wall_ratio"]["median"].is_number());
}

#[test]
fn quick_table_names_every_column_and_mode() {
    let output = bench(&["--quick", "--workloads", "live", "--modes", "taskscope"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout
        .lines()
        .find(|l| l.starts_with("workload"))
        .expect("a header row");
    for column in [
        "size",
        "mode",
        "wall ms",
        "x none",
        "CPU ms",
        "peak RSS MiB",
        "notes",
    ] {
        assert!(header.contains(column), "no {column} in {header}");
    }
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("live ")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[1].contains("taskscope") && rows[1].contains("KiB/task"),
        "{stdout}"
    );
}

#[test]
fn bad_flags_say_what_is_accepted() {
    let output = bench(&["--modes", "fastest"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("choose from none, plain, taskscope"),
        "{stderr}"
    );
}
