//! A second start of a running unit waits for the first to let go of the folder, instead of
//! failing. Its own test binary: waiting is a process-wide switch.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Duration;

use lth_store::{RunDir, verify};

#[test]
fn a_held_folder_is_waited_for_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("r"));
    let held = run.lock().unwrap();
    verify::set_wait_for_locks(true);
    let (tx, rx) = mpsc::channel();
    let path = run.path().to_owned();
    let waiter = std::thread::spawn(move || {
        let lock = RunDir::new(&path).lock();
        tx.send(lock.is_ok()).unwrap();
        lock.map(drop)
    });
    // Still waiting while the first holds it...
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    drop(held);
    // ...and through as soon as it lets go.
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    waiter.join().unwrap().unwrap();
    // Without waiting, a held folder is an error at once.
    verify::set_wait_for_locks(false);
    let _again = run.lock().unwrap();
    assert!(RunDir::new(run.path()).lock().is_err());
}
