//! Build script: let this crate's tests find libtorch at run time.
fn main() {
    lth_build::rpath_libtorch();
}
