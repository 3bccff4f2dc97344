//! The run hash: a digest of the hyperparameters that differ from their defaults.
//!
//! Hyperparameter structs have neutral defaults (`Default`), so a field added later with a neutral
//! default leaves every existing hash, and so every existing run folder, as it was.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The fields of `value` that differ from `default`, recursing into nested objects, as a JSON object
/// with sorted keys. Arrays and scalars compare whole.
pub fn non_default(value: &Value, default: &Value) -> Value {
    match (value, default) {
        (Value::Object(v), Value::Object(d)) => {
            let mut out = Map::new();
            for (key, field) in v {
                match d.get(key) {
                    Some(def) if def == field => {}
                    Some(def @ Value::Object(_)) if field.is_object() => {
                        let inner = non_default(field, def);
                        if inner.as_object().is_some_and(|m| !m.is_empty()) {
                            out.insert(key.clone(), inner);
                        }
                    }
                    _ => {
                        out.insert(key.clone(), field.clone());
                    }
                }
            }
            Value::Object(out)
        }
        _ => value.clone(),
    }
}

/// A 12-hex-digit SHA-256 digest of the non-default hyperparameters of `hparams`.
///
/// `serde_json`'s maps are ordered by key, so the digest does not depend on field order.
pub fn hparams_hash<T: Serialize + Default>(hparams: &T) -> String {
    #[allow(
        clippy::expect_used,
        reason = "hyperparameter structs are plain data that serde_json always serialises"
    )]
    let value = serde_json::to_value(hparams).expect("hyperparameters serialise to JSON");
    #[allow(
        clippy::expect_used,
        reason = "hyperparameter structs are plain data that serde_json always serialises"
    )]
    let default = serde_json::to_value(T::default()).expect("defaults serialise to JSON");
    let diff = non_default(&value, &default);
    let digest = Sha256::digest(diff.to_string().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Default)]
    struct Old {
        lr: f64,
        steps: String,
    }

    #[derive(Serialize, Default)]
    struct New {
        lr: f64,
        steps: String,
        /// A field added later, left at its neutral default.
        label_smoothing: f64,
        nested: Inner,
    }

    #[derive(Serialize, Default)]
    struct Inner {
        seed: u64,
    }

    #[test]
    fn a_new_field_at_its_default_keeps_the_hash() {
        let old = Old {
            lr: 0.1,
            steps: "2ep".into(),
        };
        let new = New {
            lr: 0.1,
            steps: "2ep".into(),
            ..Default::default()
        };
        assert_eq!(hparams_hash(&old), hparams_hash(&new));
    }

    #[test]
    fn any_non_default_change_changes_the_hash() {
        let a = New {
            lr: 0.1,
            ..Default::default()
        };
        let mut b = New {
            lr: 0.1,
            ..Default::default()
        };
        b.nested.seed = 3;
        assert_ne!(hparams_hash(&a), hparams_hash(&b));
        assert_eq!(hparams_hash(&a).len(), 12);
    }

    #[test]
    fn diff_keeps_only_changed_leaves() {
        let v = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let d = serde_json::json!({"a": 1, "b": {"c": 2, "d": 0}, "e": []});
        assert_eq!(
            non_default(&v, &d),
            serde_json::json!({"b": {"d": 3}, "e": [1]})
        );
    }
}
