//! The `lth` command: train networks, find lottery tickets, measure them.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Lets every command take negative numbers as values (`--lr -1`), so that they reach validation
/// and are refused with the real reason rather than read as unknown flags.
fn negatives(c: clap::Command) -> clap::Command {
    c.allow_negative_numbers(true).mut_subcommands(negatives)
}

fn main() -> ExitCode {
    let matches = negatives(cli::Cli::command()).get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
