//! `paxos-client [EAL options] -- --config cluster.toml [...]`: see `apps::loadgen`.

fn main() {
    apps::cli::init_logging();
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = apps::loadgen::main_with(args) {
        apps::cli::exit_with("paxos-client", e);
    }
}
