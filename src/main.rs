//! The `lth` command: train networks, find lottery tickets, measure them.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Lets every command take negative numbers as values (`--lr -1`), so that they reach validation
/// and are refused with the real reason rather than read as unknown flags.
fn negatives(c: clap::Command) -> clap::Command {
    c.allow_negative_numbers(true).mut_subcommands(negatives)
}

/// The command line's grammar: the derived one, with negative numbers allowed everywhere, and
/// `elastic`'s source given either as a lottery folder (`--from`) or as lottery flags, so that its
/// flattened `--model` is required only without `--from`.
fn command() -> clap::Command {
    negatives(cli::Cli::command()).mut_subcommand("elastic", |c| {
        c.mut_arg("model", |a| {
            a.required(false).required_unless_present("from")
        })
    })
}

/// The error and its causes on one line, each cause once: lth's errors already name their cause
/// (`<file>: <why>`), so a cause whose text is already there is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// A reader that went away (`lth repro --list | head`) ends the output, as it ends any Unix tool's,
/// without a panic's message or backtrace: Rust ignores SIGPIPE, so `println!` panics on the
/// broken pipe instead, and this hook turns that one panic into a quiet exit.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Whether the innermost subcommand has the flag `id` and it was given.
fn given(m: &clap::ArgMatches, id: &str) -> bool {
    match m.subcommand() {
        Some((_, sub)) => given(sub, id),
        None => m
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false),
    }
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let matches = command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(args, |id| given(&matches, id)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("runs/x: {source}")]
        struct Io {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Io {
            source: std::io::Error::other("File exists"),
        })
        .context("level 0");
        assert_eq!(message(&e), "level 0: runs/x: File exists");
    }
}
