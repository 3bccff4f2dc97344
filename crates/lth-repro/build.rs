//! Build script: let this crate's tests find libtorch at run time, and record what built it.
fn main() {
    lth_build::rpath_libtorch();
    lth_build::embed_build_info();
}
