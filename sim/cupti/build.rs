// The real CUDA 12 libcupti.so carries the soname libcupti.so.12: a loader that asks for that name
// finds this library once a process has loaded it by path (the harness does), as with the real one.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcupti.so.12");
}
