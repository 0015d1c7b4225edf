fn main() {
    println!("lichat-tcp-server: not yet serving");
}
