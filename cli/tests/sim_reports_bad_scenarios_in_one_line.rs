//! `peerhost sim` with a bad scenario: one `error: …` line naming the file
//! and the field, exit code 1; an unknown name lists the built-in ones.

mod common;

use common::run;

#[test]
fn a_typo_in_a_scenario_file_is_one_line_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("typo.toml");
    std::fs::write(
        &file,
        "name = \"t\"\n[site]\nfiles = 1\ntotal_bytes = 1000\n[peers]\ncount = 2\ncuont = 3\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let r = run([
        "sim",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = r.one_line_error().to_owned();
    assert!(
        line.contains("typo.toml") && line.contains("cuont"),
        "{line}"
    );
    assert!(!out.exists(), "nothing written for a bad scenario");

    let r = run(["sim", "no-such-scenario"]);
    let line = r.one_line_error().to_owned();
    assert!(line.contains("flash-crowd-1k"), "{line}");
}
