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

fn main() -> ExitCode {
    let matches = command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(args) {
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
