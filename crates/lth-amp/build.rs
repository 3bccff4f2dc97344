//! Build script: compile the autocast shim against the headers of the libtorch tch linked, and let
//! this crate's tests find libtorch at run time.
fn main() {
    lth_build::compile_shim("src/amp.cpp", "lth_amp", false);
    lth_build::rpath_libtorch();
}
