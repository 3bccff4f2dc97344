//! The tidy result tables of a lottery: one row per level and branch, one per layer.

use serde::{Deserialize, Serialize};

/// One trained unit of a lottery: a level's IMP subnetwork or a branch off it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub level: u64,
    /// `imp`, or the branch's kind (`random_reinit`, ...).
    pub branch: String,
    /// The branch's seed (empty for `imp`).
    pub seed: Option<u64>,
    /// Fraction of prunable weights kept.
    pub weights_remaining: f64,
    pub weights_kept: i64,
    /// The step training ended at (T).
    pub steps: u64,
    pub final_test_accuracy: f64,
    pub best_test_accuracy: f64,
    pub best_test_step: u64,
    /// The LTH paper's early-stopping iteration: the step of minimum validation loss.
    pub min_val_loss_step: Option<u64>,
    pub test_accuracy_at_min_val_loss: Option<f64>,
}

/// The sparsity of one layer of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    pub level: u64,
    pub branch: String,
    pub seed: Option<u64>,
    pub layer: String,
    pub kept: i64,
    pub total: i64,
    pub density: f64,
}
