//! `Named`: tensors by name, in a stated order (a state dict, scores, gradients, optimiser state).

use std::ops::Deref;

use tch::{Device, Tensor};

/// Tensors by name, in the order they were given (network order for prunable kernels, sorted for
/// a state dict). Names are unique. Dereferences to a slice of `(name, tensor)` pairs, so it goes
/// wherever named tensors went before; [`Named::get`] replaces the linear searches.
#[derive(Debug, Default)]
pub struct Named {
    items: Vec<(String, Tensor)>,
}

impl Named {
    /// An empty collection.
    pub fn new() -> Named {
        Named::default()
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Whether a tensor is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(n, _)| n.as_str())
    }

    /// Adds `tensor` under `name`, replacing a tensor of the same name in place.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        match self.items.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t = tensor,
            None => self.items.push((name, tensor)),
        }
    }

    /// The same names, each tensor mapped by `f`.
    pub fn map(&self, mut f: impl FnMut(&str, &Tensor) -> Tensor) -> Named {
        Named {
            items: self
                .items
                .iter()
                .map(|(n, t)| (n.clone(), f(n, t)))
                .collect(),
        }
    }

    /// Deep copies (new storage).
    pub fn copy(&self) -> Named {
        self.map(|_, t| t.copy())
    }

    /// Other handles on the same tensors (shared storage).
    pub fn shallow(&self) -> Named {
        self.map(|_, t| t.shallow_clone())
    }

    /// Copies on `device`.
    pub fn to_device(&self, device: Device) -> Named {
        self.map(|_, t| t.to_device(device))
    }

    /// The names prefixed with `prefix` (for storing several collections in one file).
    pub fn prefixed(&self, prefix: &str) -> Named {
        Named {
            items: self
                .items
                .iter()
                .map(|(n, t)| (format!("{prefix}{n}"), t.shallow_clone()))
                .collect(),
        }
    }

    /// The tensors whose names start with `prefix`, with the prefix removed.
    pub fn strip_prefix(&self, prefix: &str) -> Named {
        Named {
            items: self
                .items
                .iter()
                .filter_map(|(n, t)| Some((n.strip_prefix(prefix)?.to_owned(), t.shallow_clone())))
                .collect(),
        }
    }

    /// The pairs, for code that wants to own them.
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.items
    }
}

impl Deref for Named {
    type Target = [(String, Tensor)];
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl From<Vec<(String, Tensor)>> for Named {
    /// Later duplicates of a name replace earlier ones.
    fn from(items: Vec<(String, Tensor)>) -> Named {
        items.into_iter().collect()
    }
}

impl FromIterator<(String, Tensor)> for Named {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> Named {
        let mut out = Named::new();
        for (n, t) in iter {
            out.insert(n, t);
        }
        out
    }
}

impl IntoIterator for Named {
    type Item = (String, Tensor);
    type IntoIter = std::vec::IntoIter<(String, Tensor)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Named {
    type Item = &'a (String, Tensor);
    type IntoIter = std::slice::Iter<'a, (String, Tensor)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl Clone for Named {
    /// Another handle on the same tensors; use [`Named::copy`] for new storage.
    fn clone(&self) -> Named {
        self.shallow()
    }
}
