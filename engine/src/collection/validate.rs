//! Input checks of inserted and query vectors, and their normalisation under Cosine (through
//! [`crate::kernels::normalize`]) before they are stored or searched.

use crate::config::{CollectionConfig, Distance, VectorParams};
use crate::kernels;
use crate::point::{NamedVectors, PointInsert, QueryVector, Vector};
use crate::{Error, PointId, Result};

/// Longest accepted collection name.
pub const MAX_NAME_LEN: usize = 255;

/// 1-255 characters of `[A-Za-z0-9_.-]`, not starting with `.`: a name that is one path component,
/// can never be `.` or `..`, and never collides with the dot-named staging, trash and scratch entries.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Rejects collection names that are not 1-255 characters of `[A-Za-z0-9_.-]` or that start with `.`
/// (names starting with a dot are reserved for staging and trash directories).
pub fn collection_name(name: &str) -> Result<()> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid collection name {name:?}: use 1 to {MAX_NAME_LEN} characters of A-Z, a-z, \
             0-9, `_`, `-` and `.`, not starting with `.`"
        )))
    }
}

fn check_finite(name: &str, v: &[f32]) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "vector `{name}` contains NaN or infinite values"
        )))
    }
}

fn check_dim(name: &str, params: &VectorParams, v: &[f32]) -> Result<()> {
    if v.len() != params.size {
        return Err(Error::DimensionMismatch {
            name: name.to_string(),
            expected: params.size,
            got: v.len(),
        });
    }
    check_finite(name, v)
}

/// Under Cosine, scales to unit length. An all-zero vector stays as it is (Qdrant stores it; it scores
/// 0 against everything).
fn normalize(params: &VectorParams, v: &mut [f32]) -> Result<()> {
    if params.distance == Distance::Cosine {
        kernels::normalize(v);
    }
    Ok(())
}

/// Checks one named vector against its params and normalises it in place when the metric is Cosine.
fn vector(name: &str, params: &VectorParams, v: &mut Vector) -> Result<()> {
    if let (Vector::Dense(d), true) = (&mut *v, params.multivector_config.is_some()) {
        // One dense vector for a multi-vector field is a one-row matrix, as Qdrant stores it.
        *v = Vector::Multi(vec![std::mem::take(d)]);
    }
    match (v, params.multivector_config.is_some()) {
        (Vector::Dense(d), false) => {
            check_dim(name, params, d)?;
            normalize(params, d)
        }
        (Vector::Multi(rows), true) => {
            if rows.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "multi-vector `{name}` needs at least one row"
                )));
            }
            for r in rows.iter_mut() {
                check_dim(name, params, r)?;
                normalize(params, r)?;
            }
            Ok(())
        }
        (Vector::Dense(_), true) => unreachable!("made a one-row matrix above"),
        (Vector::Multi(_), false) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a single dense vector, not a multi-vector"
        ))),
        (Vector::Sparse(_), _) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a dense vector: a sparse vector (indices, values) needs a vector \
             configured in sparse_vectors"
        ))),
    }
}

/// Checks a sparse vector (lengths, duplicates, finite values) and sorts it by index.
fn sparse(name: &str, v: &mut Vector) -> Result<()> {
    match v {
        Vector::Sparse(sv) => {
            *sv = std::mem::take(sv).checked(name)?;
            Ok(())
        }
        Vector::Dense(_) | Vector::Multi(_) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a sparse vector: send {{\"indices\": [...], \"values\": [...]}}"
        ))),
    }
}

/// Validates every point and normalises its vectors. Fails on the first bad point, naming it, so that
/// nothing is applied when any point is bad.
pub fn points(config: &CollectionConfig, points: &mut [PointInsert]) -> Result<()> {
    for p in points.iter_mut() {
        vectors(config, &p.id, &mut p.vectors)?;
    }
    Ok(())
}

/// Validates one point's named vectors and normalises them; messages name the point.
pub fn vectors(config: &CollectionConfig, id: &PointId, vectors: &mut NamedVectors) -> Result<()> {
    for (name, v) in vectors.iter_mut() {
        let checked = match config.sparse(name) {
            Some(_) => sparse(name, v),
            None => vector(name, config.vector(name)?, v),
        };
        checked.map_err(|e| match e {
            Error::InvalidInput(m) => Error::InvalidInput(format!("point {id}: {m}")),
            other => other,
        })?;
    }
    Ok(())
}

/// Refuses a vector name the collection does not configure (dense, multi or sparse).
pub fn vector_name(config: &CollectionConfig, name: &str) -> Result<()> {
    if config.sparse(name).is_some() {
        return Ok(());
    }
    config.vector(name).map(|_| ())
}

/// A query checked against its field and normalised when the metric is Cosine.
pub fn query(name: &str, params: &VectorParams, query: &QueryVector) -> Result<QueryVector> {
    match (query, params.multivector_config.is_some()) {
        (QueryVector::Dense(v), false) => {
            let mut v = v.clone();
            check_dim(name, params, &v)?;
            normalize(params, &mut v)?;
            Ok(QueryVector::Dense(v))
        }
        (QueryVector::Multi(rows), true) => {
            if rows.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "a multi-vector query on `{name}` needs at least one row"
                )));
            }
            let mut rows = rows.clone();
            for r in rows.iter_mut() {
                check_dim(name, params, r)?;
                normalize(params, r)?;
            }
            Ok(QueryVector::Multi(rows))
        }
        (QueryVector::Dense(_), true) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a multi-vector field: query it with a multi-vector (a list of rows)"
        ))),
        (QueryVector::Multi(_), false) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a dense field: query it with a single vector"
        ))),
        (QueryVector::Sparse(_), _) => Err(Error::InvalidInput(format!(
            "vector `{name}` is a dense field: a sparse query needs a vector configured in \
             sparse_vectors"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "A-b_c.1", &"x".repeat(255)] {
            collection_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "a b", "..", &"x".repeat(256), "é"] {
            assert!(collection_name(bad).is_err(), "{bad}");
        }
    }
}
