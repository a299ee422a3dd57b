//! `paxos-node [EAL options] -- --config cluster.toml --id N [...]`: see `apps::node`.

fn main() {
    apps::cli::init_logging();
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = apps::node::main_with(args) {
        apps::cli::exit_with("paxos-node", e);
    }
}
