//! `.peerhostignore` (gitignore syntax) excludes exactly what git would:
//! a directory, a glob, a negation, an anchored pattern, and no
//! re-including a file under an excluded directory. `publish` says what it
//! left out; `verify` applies the same rules.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{keygen, manifest, publish, verify};

const RULES: &str = "\
# build output and logs
build/
*.log
!keep.log
/drafts
docs/**/*.tmp
# git cannot re-include a file whose directory is excluded
!build/keep.html
";

const FILES: &[&str] = &[
    "index.html",
    "build/out.html",
    "build/keep.html",
    "a.log",
    "keep.log",
    "sub/b.log",
    "drafts/x.html",
    "sub/drafts/y.html",
    "docs/a/b/c.tmp",
    "docs/x.tmp",
    "docs/page.html",
];

const PUBLISHED: &[&str] = &[
    "/docs/page.html",
    "/index.html",
    "/keep.log",
    "/sub/drafts/y.html",
];

fn write_files(root: &Path) {
    for f in FILES {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, f.as_bytes()).unwrap();
    }
}

fn assets(site: &Path) -> Vec<String> {
    manifest(site)
        .assets
        .iter()
        .map(|a| a.path.clone())
        .collect()
}

#[test]
fn excludes_what_git_excludes() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_files(&site);
    fs::write(site.join(".peerhostignore"), RULES).unwrap();
    let (key, _) = keygen(tmp.path());

    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    assert_eq!(assets(&site), PUBLISHED);
    assert!(verify(&site, &[]).ok());

    // The same rules as a .gitignore: git lists the same files.
    let gitdir = tmp.path().join("git");
    write_files(&gitdir);
    fs::write(gitdir.join(".gitignore"), RULES).unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&gitdir)
            .args(args)
            .output()
    };
    match git(&["init", "-q"]) {
        Ok(o) if o.status.success() => {
            let o = git(&["ls-files", "--others", "--exclude-standard"]).unwrap();
            assert!(o.status.success());
            let mut listed: Vec<String> = String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .filter(|l| *l != ".gitignore")
                .map(|l| format!("/{l}"))
                .collect();
            listed.sort();
            assert_eq!(listed, PUBLISHED, "git agrees");
        }
        _ => eprintln!("git not available: cross-check skipped"),
    }
}

#[test]
fn publish_summarises_what_it_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_files(&site);
    fs::write(site.join(".peerhostignore"), RULES).unwrap();
    fs::write(site.join(".env"), "hidden").unwrap();
    std::os::unix::fs::symlink(site.join("index.html"), site.join("home.html")).unwrap();
    let (key, _) = keygen(tmp.path());

    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    // Hidden: .env, .peerhostignore; ignored: a.log, build/, docs/a/b/c.tmp,
    // docs/x.tmp, drafts/, sub/b.log; one symbolic link.
    assert!(
        r.stdout
            .contains("skipped:  9 (2 hidden, 6 ignored by .peerhostignore, 1 symbolic link)"),
        "{}",
        r.stdout
    );
    // The first few names, in walk order, and a pointer to --verbose.
    assert!(r.stderr.contains("skipped .env: hidden"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("skipped build/: ignored by .peerhostignore"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("and 4 more skipped (--verbose"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("sub/b.log"), "{}", r.stderr);

    let r = publish(&site, &key, &["--verbose"]);
    assert!(r.ok(), "{r:#?}");
    for name in [
        "skipped home.html: symbolic link",
        "skipped sub/b.log: ignored",
        "skipped drafts/: ignored",
        "skipped docs/a/b/c.tmp: ignored",
    ] {
        assert!(r.stderr.contains(name), "{name}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("more skipped"), "{}", r.stderr);
}

#[test]
fn verify_flags_a_listed_file_the_rules_now_exclude() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_files(&site);
    let (key, _) = keygen(tmp.path());
    assert!(publish(&site, &key, &[]).ok());
    assert!(manifest(&site).asset("/a.log").is_some());
    fs::write(site.join(".peerhostignore"), "*.log\n").unwrap();
    let r = verify(&site, &[]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stdout.contains("ignored: /a.log"), "{}", r.stdout);
    assert!(publish(&site, &key, &[]).ok());
    assert!(verify(&site, &[]).ok());
    assert!(manifest(&site).asset("/a.log").is_none());
}

#[test]
fn a_bad_pattern_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_files(&site);
    fs::write(site.join(".peerhostignore"), "ok.txt\n[z-a\n").unwrap();
    let (key, _) = keygen(tmp.path());
    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(line.contains(".peerhostignore"), "{line}");
    assert!(!site.join("peerhost.json").exists());
}
