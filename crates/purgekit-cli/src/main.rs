fn main() {
    eprintln!("purgekit: the command line tool is not built yet (see README)");
    std::process::exit(2);
}
