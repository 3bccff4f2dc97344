//! The module-loop lint of `cargo xtask lint`: within each crate, no two modules import each other,
//! directly or in a loop. A module imports another when its code (tests aside) names a path into
//! it: `crate::a::b::Item`, `crate::{Item, ..}` where the crate root re-exports `Item` from a
//! module, or `super::sibling`. A module's own descendants and ancestors do not count (a parent
//! declares and re-exports its children; a child uses its parent's items). The paths are read from
//! the source text, which is what `git grep` would find; macros that build paths are not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;

/// One crate's modules (by path, `crate` for the root) and who imports whom.
#[derive(Debug, Default)]
pub struct Graph {
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

/// The crates of the workspace: the binary's `src/` and every `crates/*/src/`.
pub fn crate_sources(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = vec![("lth".to_owned(), root.join("src"))];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .context("reading crates/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, d.join("src")));
    }
    Ok(out)
}

/// The module path of `file` in the crate whose sources are `src` (`crate` for its root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".into()
    } else {
        parts.join("::")
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            rust_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The code of a file without its test module and its line comments.
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]\nmod ").map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The import graph of one crate's modules.
pub fn graph(src: &Path) -> Result<Graph> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        modules.insert(module_of(src, f), code(&text));
    }
    // What the crate root re-exports, by name: `pub use module::{A, B}` and `pub use module::A;`.
    let group = Regex::new(r"pub use (?:self::)?([a-z_][\w:]*)::\{([^}]*)\}")?;
    let single = Regex::new(r"pub use (?:self::)?([a-z_][\w:]*)::(\w+);")?;
    let mut exports: BTreeMap<String, String> = BTreeMap::new();
    if let Some(root) = modules.get("crate") {
        for c in group.captures_iter(root) {
            for name in c[2].split(',') {
                let name = name.split(" as ").last().unwrap_or_default().trim();
                if !name.is_empty() {
                    exports.insert(name.to_owned(), c[1].to_owned());
                }
            }
        }
        for c in single.captures_iter(root) {
            exports.insert(c[2].to_owned(), c[1].to_owned());
        }
    }
    // The deepest module a path names, through the root's re-exports.
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        for k in (1..=parts.len()).rev() {
            let candidate = parts[..k].join("::");
            if modules.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        let via = exports.get(*parts.first()?)?;
        let parts: Vec<&str> = via.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|c| modules.contains_key(c))
    };
    let grouped = Regex::new(r"crate::((?:\w+::)*)\{([^}]*)\}")?;
    let path = Regex::new(r"crate::((?:\w+::)*\w+)")?;
    let sup = Regex::new(r"super::(\w+)")?;
    let mut g = Graph::default();
    for (m, text) in &modules {
        let mut add = |target: Option<String>| {
            if let Some(t) = target {
                let related = t == *m
                    || t == "crate"
                    || m.starts_with(&format!("{t}::"))
                    || t.starts_with(&format!("{m}::"));
                if !related {
                    g.edges.entry(m.clone()).or_default().insert(t);
                }
            }
        };
        for c in grouped.captures_iter(text) {
            for name in c[2].split(',') {
                let name = name.split(" as ").next().unwrap_or_default().trim();
                if !name.is_empty() && name != "self" {
                    add(resolve(&format!("{}{name}", &c[1])));
                }
            }
        }
        for c in path.captures_iter(text) {
            add(resolve(&c[1]));
        }
        let parent = m.rsplit_once("::").map_or("crate", |(p, _)| p);
        for c in sup.captures_iter(text) {
            let sibling = if parent == "crate" {
                c[1].to_owned()
            } else {
                format!("{parent}::{}", &c[1])
            };
            if modules.contains_key(&sibling) {
                add(Some(sibling));
            }
        }
    }
    Ok(g)
}

impl Graph {
    /// Every loop: the strongly connected groups of more than one module (Tarjan's algorithm).
    pub fn loops(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            g: &'a Graph,
            next: usize,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on: BTreeSet<&'a str>,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            s.index.insert(v, s.next);
            s.low.insert(v, s.next);
            s.next += 1;
            s.stack.push(v);
            s.on.insert(v);
            if let Some(ws) = s.g.edges.get(v) {
                for w in ws {
                    let w = w.as_str();
                    if !s.index.contains_key(w) {
                        visit(s, w);
                        let lw = s.low[w];
                        let lv = s.low[v];
                        s.low.insert(v, lv.min(lw));
                    } else if s.on.contains(w) {
                        let iw = s.index[w];
                        let lv = s.low[v];
                        s.low.insert(v, lv.min(iw));
                    }
                }
            }
            if s.low[v] == s.index[v] {
                let mut group = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on.remove(w);
                    group.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    s.out.push(group);
                }
            }
        }
        let mut s = State {
            g: self,
            next: 0,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !s.index.contains_key(v.as_str()) {
                visit(&mut s, v);
            }
        }
        s.out
    }

    /// The imports inside a loop, `a -> b`, for the message.
    pub fn inside(&self, group: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for a in group {
            for b in self.edges.get(a).into_iter().flatten() {
                if group.contains(b) {
                    out.push(format!("{a} -> {b}"));
                }
            }
        }
        out
    }
}

/// Every loop of every crate under `root`, one message each.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (name, src) in crate_sources(root)? {
        let g = graph(&src)?;
        for group in g.loops() {
            problems.push(format!(
                "{name}: modules import each other in a loop: {} ({})",
                group.join(", "),
                g.inside(&group).join("; ")
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// A loop through a root re-export and a `super::` path is found, with its imports; a
    /// parent and its child, and tests, do not count.
    #[test]
    fn loops_are_found_through_re_exports_and_siblings() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    "lib.rs",
                    "mod a;\nmod b;\nmod c;\npub use b::{Thing, Other as O};\n",
                ),
                ("a.rs", "use crate::{Thing, Result};\n"),
                ("b.rs", "use super::c;\npub struct Thing;\n"),
                (
                    "c.rs",
                    "pub mod d;\nfn f() -> crate::a::X { todo!() }\n#[cfg(test)]\nmod tests { use crate::b::Thing; }\n",
                ),
                ("c/d.rs", "use super::super::c;\nuse crate::c::f;\n"),
            ],
        );
        let g = graph(dir.path()).unwrap();
        let loops = g.loops();
        assert_eq!(loops, vec![vec!["a", "b", "c"]]);
        assert_eq!(g.inside(&loops[0]), ["a -> b", "b -> c", "c -> a"]);
        // Without c's import of a, no loop (d importing its parent c does not count).
        write(dir.path(), &[("c.rs", "pub mod d;\n")]);
        assert!(graph(dir.path()).unwrap().loops().is_empty());
    }
}
