//! `paxos-cluster [--replicas N] [--transport memif|udp] [...]`: see `apps::cluster`.

fn main() {
    apps::cli::init_logging();
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = apps::cluster::main_with(args) {
        apps::cli::exit_with("paxos-cluster", e);
    }
}
