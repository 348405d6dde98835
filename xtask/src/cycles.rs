//! `cargo xtask check-cycles`: no crate of the workspace may have an import
//! cycle between its top-level modules, so the tree keeps showing the
//! architecture (drivers depend on their tasks, never the other way round).
//!
//! A small lexer is enough, no `syn`: per crate root (`src/lib.rs`,
//! `src/main.rs`, `src/bin/*.rs`) it follows `mod` declarations (files and
//! inline modules, `#[cfg(test)]` modules left out), and records every
//! `crate::x` and `super::…::x` path that lands on the top-level module `x`,
//! including names the crate root re-exports with `use x::…`. Items defined
//! in the crate root itself are nobody's module and make no edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::repo_root;

/// Checks every workspace crate; an error lists each cycle found.
pub fn run() -> Result<(), String> {
    let root = repo_root();
    let mut cycles = Vec::new();
    for (name, file) in crate_roots(&root)? {
        let graph = Graph::of_crate(&file, &|p: &Path| std::fs::read_to_string(p).ok());
        let shown = file.strip_prefix(&root).unwrap_or(&file).display();
        let found = graph.cycles();
        if found.is_empty() {
            println!(
                "    {name} ({shown}): {} modules, no cycle",
                graph.modules.len()
            );
        }
        for (cycle, members) in found {
            let path = graph.describe(&cycle);
            let path = path.replace(&format!("{}/", root.display()), "");
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            let line = format!(
                "{name} ({shown}): {path}; modules in the cycle: {}",
                members.join(", ")
            );
            println!("    cycle in {line}");
            cycles.push(line);
        }
    }
    if cycles.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} import cycle(s) between top-level modules",
            cycles.len()
        ))
    }
}

/// `(crate directory, root file)` of every library and binary target of the
/// workspace members listed in the root `Cargo.toml`.
fn crate_roots(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| format!("Cargo.toml: {e}"))?;
    let start = manifest
        .find("members")
        .and_then(|i| manifest[i..].find('[').map(|j| i + j + 1))
        .ok_or("Cargo.toml: no workspace members")?;
    let end = manifest[start..]
        .find(']')
        .ok_or("Cargo.toml: malformed members")?
        + start;
    let mut out = Vec::new();
    for member in manifest[start..end].split(',') {
        let member = member.trim().trim_matches('"');
        if member.is_empty() {
            continue;
        }
        let src = root.join(member).join("src");
        let mut files = vec![src.join("lib.rs"), src.join("main.rs")];
        let mut bins: Vec<PathBuf> = std::fs::read_dir(src.join("bin"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        bins.sort();
        files.extend(bins);
        for f in files.into_iter().filter(|f| f.is_file()) {
            out.push((member.to_owned(), f));
        }
    }
    Ok(out)
}

/// One crate's top-level modules and the references between them.
#[derive(Debug, Default)]
struct Graph {
    /// Top-level module names.
    modules: BTreeSet<String>,
    /// `from -> to -> where` (the first reference seen, `file:line`).
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

/// What the lexer keeps of Rust source: identifiers (keywords included),
/// `::`, and single punctuation characters, each with its line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Name of a root-level item that a reference points at, with where it was.
struct Reference {
    name: String,
    line: usize,
}

impl Graph {
    /// Builds the graph of the crate whose root file is `root`; `read`
    /// returns a file's text (a test passes an in-memory tree).
    fn of_crate(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Graph {
        let mut graph = Graph::default();
        let Some(text) = read(root) else {
            return graph;
        };
        let toks = lex(&text);
        let dir = root.parent().unwrap_or(Path::new("")).to_owned();
        // The crate root: its modules, and the names it imports from them.
        let mut children = Vec::new();
        let mut refs = Vec::new();
        scan(&toks, 0, &mut children, &mut refs);
        for (name, _) in &children {
            graph.modules.insert(name.clone());
        }
        let reexports = root_imports(&toks, &graph.modules);
        for (name, body) in children {
            let mut refs = Vec::new();
            match body {
                ModBody::Inline(range) => {
                    let inner = &toks[range];
                    let sub_dir = dir.join(&name);
                    collect(inner, root, &sub_dir, 1, read, &mut refs);
                }
                ModBody::File => {
                    let file = [
                        dir.join(format!("{name}.rs")),
                        dir.join(&name).join("mod.rs"),
                    ]
                    .into_iter()
                    .find(|f| read(f).is_some());
                    if let Some(file) = file {
                        let text = read(&file).unwrap_or_default();
                        let sub_dir = if file.ends_with("mod.rs") {
                            file.parent().unwrap_or(&dir).to_owned()
                        } else {
                            dir.join(&name)
                        };
                        collect(&lex(&text), &file, &sub_dir, 1, read, &mut refs);
                    }
                }
            }
            for (file, r) in refs {
                let target = if graph.modules.contains(&r.name) {
                    Some(r.name.clone())
                } else {
                    reexports.get(&r.name).cloned()
                };
                if let Some(to) = target.filter(|t| *t != name) {
                    graph
                        .edges
                        .entry(name.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{}:{}", file.display(), r.line));
                }
            }
        }
        graph
    }

    /// Every strongly connected set of two or more modules: its shortest
    /// cycle through its first module, and all its modules.
    fn cycles(&self) -> Vec<(Vec<String>, BTreeSet<String>)> {
        let mut out = Vec::new();
        let mut done = BTreeSet::new();
        for start in &self.modules {
            if done.contains(start) {
                continue;
            }
            let from_start = self.reachable(start);
            let component: BTreeSet<String> = from_start
                .iter()
                .filter(|m| self.reachable(m).contains(start))
                .cloned()
                .collect();
            done.extend(component.iter().cloned());
            if component.len() > 1
                && let Some(path) = self.path_back(start, &component)
            {
                out.push((path, component));
            }
        }
        out
    }

    fn reachable(&self, from: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for to in self.edges.get(&m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    }

    /// The shortest path `start -> … -> start` inside `component`.
    fn path_back(&self, start: &str, component: &BTreeSet<String>) -> Option<Vec<String>> {
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_owned()]);
        while let Some(m) = queue.pop_front() {
            for to in self.edges.get(&m).into_iter().flat_map(|e| e.keys()) {
                if !component.contains(to) {
                    continue;
                }
                if to == start {
                    let mut path = vec![start.to_owned(), m.clone()];
                    let mut at = m.clone();
                    while let Some(p) = prev.get(&at) {
                        path.push(p.clone());
                        at = p.clone();
                    }
                    path.reverse();
                    path.push(start.to_owned());
                    path.dedup();
                    return Some(path);
                }
                if to != start && !prev.contains_key(to) {
                    prev.insert(to.clone(), m.clone());
                    queue.push_back(to.clone());
                }
            }
        }
        None
    }

    /// `a -> b (file:line) -> a (file:line)`.
    fn describe(&self, cycle: &[String]) -> String {
        let mut s = cycle[0].clone();
        for pair in cycle.windows(2) {
            let at = &self.edges[&pair[0]][&pair[1]];
            s.push_str(&format!(" -> {} ({at})", pair[1]));
        }
        s
    }
}

/// A `mod` declaration's body: a file of its own, or tokens inline.
enum ModBody {
    File,
    Inline(std::ops::Range<usize>),
}

/// Records the references of one module (the tokens of `file` or of an
/// inline module in it) at `depth` below the crate root, and of its
/// non-test submodules; `dir` is where its `mod x;` files live.
fn collect(
    toks: &[(Tok, usize)],
    file: &Path,
    dir: &Path,
    depth: usize,
    read: &dyn Fn(&Path) -> Option<String>,
    out: &mut Vec<(PathBuf, Reference)>,
) {
    let mut children = Vec::new();
    let mut refs = Vec::new();
    scan(toks, depth, &mut children, &mut refs);
    out.extend(refs.into_iter().map(|r| (file.to_owned(), r)));
    for (name, body) in children {
        match body {
            ModBody::Inline(range) => {
                collect(&toks[range], file, &dir.join(&name), depth + 1, read, out);
            }
            ModBody::File => {
                for f in [
                    dir.join(format!("{name}.rs")),
                    dir.join(&name).join("mod.rs"),
                ] {
                    if let Some(text) = read(&f) {
                        collect(&lex(&text), &f, &dir.join(&name), depth + 1, read, out);
                        break;
                    }
                }
            }
        }
    }
}

/// One module's own tokens: its `mod` children (test modules skipped) and
/// the root-level names its paths reach (`crate::x`, `super::…::x` climbing
/// past the root).
fn scan(
    toks: &[(Tok, usize)],
    depth: usize,
    children: &mut Vec<(String, ModBody)>,
    refs: &mut Vec<Reference>,
) {
    let mut cfg_test = false;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('#') => {
                let inner = usize::from(toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct('!')));
                if toks.get(i + 1 + inner).map(|t| &t.0) == Some(&Tok::Punct('[')) {
                    let end = matching(toks, i + 1 + inner);
                    if is_cfg_test(&toks[i + 2 + inner..end]) {
                        cfg_test = true;
                    }
                    i = end + 1;
                    continue;
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some((Tok::Ident(name), _)) = toks.get(i + 1) {
                    match toks.get(i + 2).map(|t| &t.0) {
                        Some(Tok::Punct(';')) => {
                            if !cfg_test {
                                children.push((name.clone(), ModBody::File));
                            }
                            cfg_test = false;
                            i += 3;
                            continue;
                        }
                        Some(Tok::Punct('{')) => {
                            let end = matching(toks, i + 2);
                            if !cfg_test {
                                children.push((name.clone(), ModBody::Inline(i + 3..end)));
                            }
                            cfg_test = false;
                            i = end + 1;
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(kw) if kw == "pub" || kw == "crate" || kw == "super" || kw == "in" => {
                // Visibility (`pub(crate)`, `pub(super)`, `pub(in …)`) keeps a
                // pending `#[cfg(test)]`; a path starting here is a reference.
                refs.extend(path_at(toks, i, depth));
            }
            Tok::Punct('(' | ')') => {}
            _ => cfg_test = false,
        }
        i += 1;
    }
}

/// The root-level name a path starting at `toks[i]` reaches, if it does:
/// `crate::x`, or enough `super::` to climb from `depth` to the root; a
/// `{…}` group (`use crate::{a, b::c}`) yields each of its names.
fn path_at(toks: &[(Tok, usize)], i: usize, depth: usize) -> Vec<Reference> {
    // `$crate` in a macro and `x::crate` are not paths from this module.
    if i > 0 && matches!(toks[i - 1].0, Tok::Punct('$') | Tok::PathSep) {
        return Vec::new();
    }
    let mut j = i;
    match &toks[j].0 {
        Tok::Ident(k) if k == "crate" => j += 1,
        Tok::Ident(k) if k == "super" => {
            let mut ups = 0;
            while matches!(&toks.get(j).map(|t| &t.0), Some(Tok::Ident(k)) if k == "super")
                && toks.get(j + 1).map(|t| &t.0) == Some(&Tok::PathSep)
            {
                ups += 1;
                j += 2;
            }
            if ups == 0 || ups < depth {
                return Vec::new();
            }
            j -= 1;
        }
        _ => return Vec::new(),
    }
    if toks.get(j).map(|t| &t.0) != Some(&Tok::PathSep) {
        return Vec::new();
    }
    let line = toks[i].1;
    match toks.get(j + 1).map(|t| &t.0) {
        Some(Tok::Ident(name)) => vec![Reference {
            name: name.clone(),
            line,
        }],
        Some(Tok::Punct('{')) => group_names(toks, j + 1)
            .into_iter()
            .map(|name| Reference { name, line })
            .collect(),
        _ => Vec::new(),
    }
}

/// The first name of each item of the `{…}` group opening at `toks[open]`.
fn group_names(toks: &[(Tok, usize)], open: usize) -> Vec<String> {
    let end = matching(toks, open);
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (t, _) in &toks[open + 1..end] {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => item_start = true,
            Tok::Ident(name) if depth == 0 && item_start => {
                names.push(name.clone());
                item_start = false;
            }
            _ => {}
        }
    }
    names
}

/// Whether an attribute's tokens (between `[` and `]`) are `cfg(test)`.
fn is_cfg_test(attr: &[(Tok, usize)]) -> bool {
    let toks: Vec<&Tok> = attr.iter().map(|t| &t.0).collect();
    toks == [
        &Tok::Ident("cfg".into()),
        &Tok::Punct('('),
        &Tok::Ident("test".into()),
        &Tok::Punct(')'),
    ]
}

/// Names the crate root imports from its own modules (`use x::{A, b::C as
/// D}` makes `crate::A` and `crate::D` mean module `x`).
fn root_imports(toks: &[(Tok, usize)], modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    let mut depth = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Ident(k) if k == "use" && depth == 0 => {
                let end = (i..toks.len())
                    .find(|&j| toks[j].0 == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                let mut body = &toks[i + 1..end];
                if let [(Tok::Ident(k), _), (Tok::PathSep, _), rest @ ..] = body
                    && (k == "crate" || k == "self")
                {
                    body = rest;
                }
                if let [(Tok::Ident(module), _), (Tok::PathSep, _), ..] = body
                    && modules.contains(module)
                {
                    for (k, t) in body.iter().enumerate() {
                        let Tok::Ident(name) = &t.0 else { continue };
                        let next = body.get(k + 1).map(|t| &t.0);
                        let leaf = matches!(next, None | Some(Tok::Punct(',' | '}')));
                        let renamed = matches!(next, Some(Tok::Ident(a)) if a == "as");
                        if leaf && name != "self" && !renamed {
                            out.insert(name.clone(), module.clone());
                        }
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The index of the bracket closing the one at `toks[open]` (or the end).
fn matching(toks: &[(Tok, usize)], open: usize) -> usize {
    let (o, c) = match toks[open].0 {
        Tok::Punct('[') => ('[', ']'),
        Tok::Punct('(') => ('(', ')'),
        _ => ('{', '}'),
    };
    let mut depth = 0usize;
    for (k, (t, _)) in toks.iter().enumerate().skip(open) {
        if *t == Tok::Punct(o) {
            depth += 1;
        } else if *t == Tok::Punct(c) {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len()
}

/// Rust source to tokens, without comments, strings and character literals.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |k: usize| b.get(k).copied().unwrap_or('\0');
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&b, i + 1, &mut line);
        } else if (c == 'r' || c == 'b' || c == 'c') && raw_string_start(&b, i).is_some() {
            let (hashes, quote) = raw_string_start(&b, i).unwrap_or((0, i));
            let mut k = quote + 1;
            loop {
                if k >= b.len() {
                    break;
                }
                if b[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                    k += 1 + hashes;
                    break;
                }
                line += usize::from(b[k] == '\n');
                k += 1;
            }
            i = k;
        } else if (c == 'b' || c == 'c') && at(i + 1) == '"' {
            i = skip_string(&b, i + 2, &mut line);
        } else if c == 'b' && at(i + 1) == '\'' {
            i = skip_char(&b, i + 2);
        } else if c == '\'' {
            // A character literal closes within a few characters; a
            // lifetime or label does not.
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = skip_char(&b, i + 1);
            } else {
                i += 1;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            // `r#type` is the identifier `type`.
            if word == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_') {
                continue;
            }
            out.push((Tok::Ident(word), line));
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, `cr#"`…: the number of `#` and the index of the quote.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_') {
        return None;
    }
    let mut k = i;
    if b[k] == 'b' || b[k] == 'c' {
        k += 1;
    }
    if b.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let mut hashes = 0;
    while b.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    (b.get(k) == Some(&'"')).then_some((hashes, k))
}

/// Past the closing quote of a string whose body starts at `i`.
fn skip_string(b: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < b.len() {
        match b[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// Past the closing quote of a character literal whose body starts at `i`.
fn skip_char(b: &[char], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            '\\' => i += 2,
            '\'' => return i + 1,
            '\n' => return i,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The graph of an in-memory crate: `(path, text)` pairs, root `src/lib.rs`.
    fn graph(files: &[(&str, &str)]) -> Graph {
        let files: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
            .collect();
        Graph::of_crate(Path::new("src/lib.rs"), &|p: &Path| files.get(p).cloned())
    }

    fn edges(g: &Graph) -> Vec<(String, String)> {
        g.edges
            .iter()
            .flat_map(|(a, tos)| tos.keys().map(|b| (a.clone(), b.clone())))
            .collect()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn a_use_in_each_direction_is_a_cycle() {
        let g = graph(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;"),
            ("src/a.rs", "use crate::b::Thing;"),
            ("src/b.rs", "use crate::c::Other;\nfn f() { crate::c::g() }"),
            ("src/c.rs", "//! docs\npub fn g() { super::a::h(); }"),
        ]);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].0, ["a", "b", "c", "a"]);
        assert_eq!(cycles[0].1.len(), 3);
        let shown = g.describe(&cycles[0].0);
        assert_eq!(
            shown,
            "a -> b (src/a.rs:1) -> c (src/b.rs:1) -> a (src/c.rs:2)"
        );
    }

    #[test]
    fn one_way_dependencies_are_fine() {
        let g = graph(&[
            ("src/lib.rs", "mod driver;\nmod event;\nmod peer;"),
            ("src/driver.rs", "use crate::{event::Event, peer};"),
            ("src/peer.rs", "use crate::event::Event;"),
            ("src/event.rs", "pub enum Event {}"),
        ]);
        assert_eq!(
            edges(&g),
            [
                pair("driver", "event"),
                pair("driver", "peer"),
                pair("peer", "event")
            ]
        );
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn every_name_of_a_use_group_counts() {
        let g = graph(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;"),
            ("src/a.rs", "use crate::{b::X, c::{self, Y}};"),
            ("src/c.rs", "use crate::a;"),
        ]);
        assert_eq!(edges(&g), [pair("a", "b"), pair("a", "c"), pair("c", "a")]);
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn test_modules_comments_and_strings_do_not_count() {
        let g = graph(&[
            ("src/lib.rs", "mod a;\nmod b;"),
            ("src/a.rs", "use crate::b;"),
            (
                "src/b.rs",
                "// crate::a in a comment\n/* crate::a /* nested */ crate::a */\n\
                 const S: &str = \"crate::a\";\nconst R: &str = r#\"crate::a\"#;\n\
                 fn f<'a>(x: &'a str) -> char { '\"' }\n\
                 #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a;\n}\n\
                 #[cfg(test)]\nmod more_tests;",
            ),
            ("src/b/more_tests.rs", "use crate::a;"),
        ]);
        assert_eq!(edges(&g), [pair("a", "b")]);
    }

    #[test]
    fn submodules_belong_to_their_top_level_module() {
        let g = graph(&[
            (
                "src/lib.rs",
                "mod driver;\nmod peer;\nmod inline { use crate::peer; }",
            ),
            (
                "src/driver.rs",
                "mod mirror;\nmod inner { use super::super::peer::P; }",
            ),
            // `super` here is `driver`: no edge.
            (
                "src/driver/mirror.rs",
                "use super::Driver;\nuse crate::peer::Q;",
            ),
            ("src/peer/mod.rs", "mod conn;"),
            ("src/peer/conn.rs", "use super::super::inline::X;"),
        ]);
        assert_eq!(
            edges(&g),
            [
                pair("driver", "peer"),
                pair("inline", "peer"),
                pair("peer", "inline")
            ]
        );
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn names_the_root_imports_lead_to_their_module() {
        let g = graph(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\npub use a::{Status, render as render_a};\nuse b::Thing;\n\
                 pub struct Root;",
            ),
            // `crate::Root` is the root's own item: no edge.
            ("src/a.rs", "use crate::{Root, Thing};"),
            ("src/b.rs", "fn f() -> crate::Status { todo!() }"),
        ]);
        assert_eq!(edges(&g), [pair("a", "b"), pair("b", "a")]);
    }

    #[test]
    fn visibility_and_macros_are_not_references() {
        let g = graph(&[
            ("src/lib.rs", "mod a;\nmod b;"),
            (
                "src/a.rs",
                "pub(crate) fn f() {}\npub(super) struct S;\n\
                 macro_rules! m { () => { $crate::b::g() } }",
            ),
            ("src/b.rs", "pub(crate) fn g() { crate::a::f() }"),
        ]);
        assert_eq!(edges(&g), [pair("b", "a")]);
    }
}
