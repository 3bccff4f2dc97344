//! What a user probably meant by a path that does not exist: the nearest existing one.

use std::path::{Path, PathBuf};

/// The existing path nearest to `path`, which does not exist: below its deepest existing
/// ancestor, the entry whose name is closest (normalised Damerau-Levenshtein similarity of at least
/// 0.5) to the first missing component; else that ancestor itself. `None` when no ancestor exists
/// (a relative path is taken from the working directory).
pub fn nearest(path: &Path) -> Option<PathBuf> {
    let mut missing = Vec::new();
    let mut at = path;
    while !at.exists() {
        missing.push(at.file_name()?.to_string_lossy().into_owned());
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    let wanted = missing.pop()?;
    let best = std::fs::read_dir(at)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (strsim::normalized_damerau_levenshtein(&wanted, &name), name)
        })
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    Some(match best {
        Some((_, name)) => at.join(name),
        None => at.to_owned(),
    })
}

/// `path` does not exist: ` (did you mean <nearest>?)`, or nothing when there is no guess.
pub fn did_you_mean(path: &Path) -> String {
    nearest(path).map_or_else(String::new, |p| format!(" (did you mean {}?)", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_nearest_sibling_and_else_the_deepest_existing_folder() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runs = dir.path().join("runs");
        for name in [
            "lottery_27976800bf8d",
            "lottery_4a876117e87e",
            "transplant_78d2",
        ] {
            std::fs::create_dir_all(runs.join(name).join("replicate_1"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let base = runs.join("lottery_27976800bf8d");
        assert_eq!(
            nearest(&runs.join("lottery_27976800bf8e")),
            Some(base.clone())
        );
        assert_eq!(
            nearest(&base.join("replicate_9")),
            Some(base.join("replicate_1"))
        );
        // Nothing alike: the deepest folder that exists.
        assert_eq!(nearest(&base.join("zzzz/yyy")), Some(base.clone()));
        assert_eq!(
            did_you_mean(&runs.join("lotery_4a876117e87e")),
            format!(
                " (did you mean {}?)",
                runs.join("lottery_4a876117e87e").display()
            )
        );
    }
}
