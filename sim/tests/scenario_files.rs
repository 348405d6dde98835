//! Scenario files: every built-in parses; bad ones give one clear line
//! naming the file and the field.

use peerhost_sim::scenario::{BUILT_IN, Scenario, ScenarioError};

#[test]
fn every_built_in_scenario_parses_and_is_named_like_its_file() {
    for (name, text) in BUILT_IN {
        let s = Scenario::from_toml(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&s.name, name);
        assert_eq!(Scenario::load(name).unwrap(), s);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let files = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(
        files,
        BUILT_IN.len(),
        "every file in sim/scenarios is built in"
    );
}

const GOOD: &str = r#"
name = "t"
[site]
files = 2
total_bytes = 100000
[peers]
count = 10
"#;

fn err(text: &str) -> String {
    let e = Scenario::from_toml(text, "bad.toml").unwrap_err();
    let line = e.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(line.starts_with("scenario bad.toml: "), "{line}");
    line
}

#[test]
fn bad_scenarios_are_refused_with_the_field_named() {
    assert!(Scenario::from_toml(GOOD, "good.toml").is_ok());
    // A typo is an error, not a silently different experiment.
    let e = err(&GOOD.replace("count = 10", "count = 10\ncuont = 3"));
    assert!(e.contains("unknown field") && e.contains("cuont"), "{e}");
    let e = err(&GOOD.replace(
        "[peers]\ncount = 10",
        "[peers]\ncount = 10\narrival = { kind = \"stampede\" }",
    ));
    assert!(e.contains("stampede"), "{e}");
    let e = err(&GOOD.replace("count = 10", "count = 0"));
    assert!(e.contains("peers.count"), "{e}");
    let e = err(&format!(
        "{GOOD}\n[network]\nlatency_ms = [1, 2]\nloss = 1.5\nnat_failure = 0\nmix = [{{ name = \"x\", share = 1, down_mbps = 1, up_mbps = 1 }}]\n"
    ));
    assert!(e.contains("network.loss") && e.contains("1.5"), "{e}");
    let e = err(&format!("{GOOD}\n[hostile]\nfraction = 0.1\n"));
    assert!(e.contains("hostile"), "{e}");
    let e = err("name = \"t\"\n[site]\nfiles = \"five\"\n");
    assert!(e.contains("files"), "{e}");
    let e = err("name = \"t\"\n");
    assert!(e.contains("site"), "missing table named: {e}");
}

#[test]
fn unknown_names_list_the_built_ins() {
    let e = Scenario::load("flash-crowd-1m").unwrap_err();
    assert!(matches!(e, ScenarioError::Unknown { .. }));
    let line = e.to_string();
    assert!(
        line.contains("flash-crowd-1k") && line.contains("churn-heavy"),
        "{line}"
    );
}
