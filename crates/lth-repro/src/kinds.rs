//! The registry of experiment kinds: the one list a spec's `experiment` is looked up in. It is a
//! module of its own, apart from the [`Experiment`] trait that every kind imports, so that no kind
//! and the trait's module import each other.

use crate::{
    EarlyBirdTickets, Experiment, FastTickets, Generalized, GreedySelection, LayerCollapse,
    LearnedSupermask, LinearModeConnectivity, LotteryCurve, PruneAtInit, Rewinding, SparseTraining,
    Stability, StateOfSparsity, Supermask, Transplanted, Tropical,
};

/// Every kind of experiment: the one list a spec's `experiment` is looked up in.
fn all() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(Stability),
        Box::new(LotteryCurve),
        Box::new(PruneAtInit),
        Box::new(LayerCollapse),
        Box::new(SparseTraining),
        Box::new(Transplanted::ELASTIC),
        Box::new(Transplanted::TRANSFER),
        Box::new(Supermask),
        Box::new(EarlyBirdTickets),
        Box::new(LearnedSupermask),
        Box::new(StateOfSparsity),
        Box::new(Rewinding),
        Box::new(LinearModeConnectivity),
        Box::new(Tropical),
        Box::new(GreedySelection),
        Box::new(FastTickets),
        Box::new(Generalized),
    ]
}

/// The names of every kind.
pub fn kinds() -> Vec<&'static str> {
    all().iter().map(|e| e.kind()).collect()
}

/// The experiment of a kind.
pub fn experiment(kind: &str) -> Option<Box<dyn Experiment>> {
    all().into_iter().find(|e| e.kind() == kind)
}
