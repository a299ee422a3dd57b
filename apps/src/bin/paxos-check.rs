//! `paxos-check HISTORY.jsonl...`: see `apps::check`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(apps::check::main_with(args));
}
