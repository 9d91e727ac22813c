//! `neuroflow-node`: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;
use neuroflow::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse())
}
