//! Build script of the `lth` binary: find libtorch at run time, and keep CUDA linked.
fn main() {
    lth_build::rpath_libtorch();
    lth_build::link_cuda();
}
