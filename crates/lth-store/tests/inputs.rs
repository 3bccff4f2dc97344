//! A unit made from another (a level from the level before, a branch from its level) records its
//! input's results digest; when the input is trained again with other results, the unit is
//! damaged, and `--retrain-damaged` removes everything it wrote, so that it is made again from
//! the new input. Its own test binary: the retrain switch is process-wide.
#![allow(clippy::unwrap_used)]

use lth_store::{RunDir, verify};

#[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
struct Summary {
    accuracy: f64,
}

#[test]
fn a_unit_made_from_an_input_whose_results_changed_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let parent = RunDir::new(dir.path().join("level_1/main"));
    let child = RunDir::new(dir.path().join("level_2/main"));
    parent.create().unwrap();
    std::fs::write(parent.join("final.safetensors"), b"weights of level 1").unwrap();
    parent.mark_done(&Summary { accuracy: 0.8 }).unwrap();

    // The child cannot record an unfinished input.
    let unfinished = RunDir::new(dir.path().join("level_9/main"));
    let e = child.record_inputs(&[&unfinished]).unwrap_err().to_string();
    assert!(e.contains("not finished"), "{e}");

    child.create().unwrap();
    child.record_inputs(&[&parent]).unwrap();
    let inputs = std::fs::read_to_string(child.join(verify::INPUTS_FILE)).unwrap();
    assert!(inputs.contains("\"../../level_1/main\""), "{inputs}");
    std::fs::write(child.join("mask.safetensors"), b"pruned from level 1").unwrap();
    std::fs::write(child.join("final.safetensors"), b"weights of level 2").unwrap();
    child.mark_done(&Summary { accuracy: 0.7 }).unwrap();
    assert_eq!(child.verify().unwrap(), None);

    // The parent trained again with the same results: the child is still sound.
    std::fs::remove_file(parent.join("done.json")).unwrap();
    parent.mark_done(&Summary { accuracy: 0.8 }).unwrap();
    assert_eq!(child.verify().unwrap(), None);

    // With other results (another machine, another thread count): stale.
    std::fs::write(
        parent.join("final.safetensors"),
        b"other weights of level 1",
    )
    .unwrap();
    std::fs::remove_file(parent.join("done.json")).unwrap();
    parent.mark_done(&Summary { accuracy: 0.81 }).unwrap();
    let d = child.verify().unwrap().unwrap();
    assert!(d.stale && d.file == verify::INPUTS_FILE, "{d:?}");
    assert!(d.problem.contains("../../level_1/main"), "{d:?}");
    // Without --retrain-damaged the child is an error naming what changed. (Each look goes
    // through another spelling of the path: a unit is verified once per process and path.)
    let fresh = RunDir::new(dir.path().join("level_2/../level_2/main"));
    let e = fresh.is_done().unwrap_err().to_string();
    assert!(
        e.contains("whose results changed") && e.contains("--retrain-damaged"),
        "{e}"
    );
    // With it, everything the child wrote goes (its mask was pruned from the old results), and
    // it is unfinished.
    verify::set_retrain_damaged(true);
    let again = RunDir::new(dir.path().join("level_1/../level_2/main"));
    assert!(!again.is_done().unwrap());
    for file in [
        "mask.safetensors",
        "final.safetensors",
        "inputs.json",
        "done.json",
    ] {
        assert!(!child.join(file).exists(), "{file} was kept");
    }
    // The parent no longer finished: the child, remade and finished, is again stale.
    child.record_inputs(&[&parent]).unwrap();
    child.mark_done(&Summary { accuracy: 0.7 }).unwrap();
    std::fs::remove_file(parent.join("done.json")).unwrap();
    let d = child.verify().unwrap().unwrap();
    assert!(d.problem.contains("no longer finished"), "{d:?}");
}
