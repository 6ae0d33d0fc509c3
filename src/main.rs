fn main() {
    println!("gated {}", env!("CARGO_PKG_VERSION"));
}
