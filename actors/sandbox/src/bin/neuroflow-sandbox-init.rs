//! The sandbox init on its own, for embedders whose binary cannot host the node's hidden
//! `sandbox-init` subcommand (and for this crate's tests).

fn main() {
    std::process::exit(neuroflow_sandbox::init::main());
}
