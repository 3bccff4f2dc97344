//! Build script: compile the kernels against the headers of the libtorch tch linked, on libtorch's
//! OpenMP threads, and let this crate's tests find libtorch at run time.
fn main() {
    lth_build::compile_shim("src/kernels.cpp", "lth_kernels", true);
    lth_build::rpath_libtorch();
}
