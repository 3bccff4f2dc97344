//! The GitHub workflows run only commands that exist: every `cargo xtask <command>` is a
//! subcommand of xtask, every script they call is in the repository and executable, and the
//! scripts' own `cargo xtask` calls exist too. (`cargo xtask lint` runs the workflow linter.)
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The subcommands of xtask, from its `Cmd` enum (variant `BundleAll` is `bundle-all`).
fn xtask_commands() -> Vec<String> {
    let src = std::fs::read_to_string(root().join("xtask/src/main.rs")).unwrap();
    let body = src.split("enum Cmd {").nth(1).unwrap();
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .filter_map(|l| {
            let name: String = l
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let first = name.chars().next()?;
            first.is_ascii_uppercase().then(|| {
                name.chars()
                    .enumerate()
                    .fold(String::new(), |mut s, (i, c)| {
                        if c.is_ascii_uppercase() && i > 0 {
                            s.push('-');
                        }
                        s.push(c.to_ascii_lowercase());
                        s
                    })
            })
        })
        .collect()
}

/// The shell lines of a workflow's `run:` steps.
fn run_lines(workflow: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<usize> = None;
    for line in workflow.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(at) = block {
            if line.trim().is_empty() || indent > at {
                out.push(line.trim().to_owned());
                continue;
            }
            block = None;
        }
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(rest) = t.strip_prefix("run:") {
            let rest = rest.trim();
            if rest == "|" || rest == ">" {
                block = Some(indent);
            } else {
                out.push(rest.to_owned());
            }
        }
    }
    out
}

/// Checks the commands of `lines`, following the scripts they run.
fn check(lines: &[String], commands: &[String], from: &str) -> usize {
    let mut checked = 0;
    for l in lines {
        if let Some(rest) = l.split("cargo xtask ").nth(1) {
            let sub = rest.split_whitespace().next().unwrap();
            assert!(
                commands.iter().any(|c| c == sub),
                "{from}: `cargo xtask {sub}` is not a subcommand of xtask ({commands:?})"
            );
            checked += 1;
        }
        if let Some(script) = l.strip_prefix("bash ") {
            let script = script.split_whitespace().next().unwrap();
            let path = root().join(script);
            assert!(
                path.is_file(),
                "{from}: runs {script}, which is not in the repository"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert!(mode & 0o111 != 0, "{script} is not executable");
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let inner: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
            checked += 1 + check(&inner, commands, script);
        }
    }
    checked
}

#[test]
fn every_command_a_workflow_runs_exists() {
    let commands = xtask_commands();
    for c in ["setup", "test", "lint", "repro", "bench", "bundle"] {
        assert!(commands.iter().any(|x| x == c), "{c} in {commands:?}");
    }
    let dir = root().join(".github/workflows");
    let mut workflows = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let checked = check(&run_lines(&text), &commands, &name);
        assert!(checked > 0, "{name} runs nothing this test recognises");
        workflows += 1;
    }
    assert!(workflows >= 2, "nightly.yml and ci.yml");
    // The nightly workflow runs every target on CUDA with a verdict, and keeps the reports.
    let nightly = std::fs::read_to_string(dir.join("nightly.yml")).unwrap();
    let script = std::fs::read_to_string(root().join(".github/scripts/nightly-repro.sh")).unwrap();
    assert!(script.contains("cargo xtask repro --all --scale \"$scale\" --device cuda --check"));
    for needed in [
        "[self-hosted, gpu]",
        "schedule:",
        "workflow_dispatch:",
        "upload-artifact",
        "GITHUB_STEP_SUMMARY",
        "actions/cache",
    ] {
        assert!(nightly.contains(needed), "nightly.yml lacks {needed}");
    }
}
