//! Payload keys: `a.b.c` walks nested objects; `a[]` and `a[2]` pick all or one element of an array;
//! `"a.b"` quotes a key that holds dots. An array met where a key is expected is searched element by
//! element, so `a.b` also reaches `{"a": [{"b": 1}, {"b": 2}]}`.

use serde_json::Value;

use crate::point::Payload;

/// One step of a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Step<'k> {
    Key(&'k str),
    AllElements,
    Element(usize),
}

/// Splits a key into steps without allocating. A key that does not parse is used whole, as one
/// literal field name.
fn steps(key: &str) -> impl Iterator<Item = Step<'_>> + Clone {
    let parsed = parse(key).is_some();
    Steps {
        rest: key,
        literal: !parsed,
        start: true,
    }
}

#[derive(Clone)]
struct Steps<'k> {
    rest: &'k str,
    literal: bool,
    start: bool,
}

impl<'k> Iterator for Steps<'k> {
    type Item = Step<'k>;

    fn next(&mut self) -> Option<Step<'k>> {
        if self.literal {
            if self.rest.is_empty() && !self.start {
                return None;
            }
            self.start = false;
            return Some(Step::Key(std::mem::take(&mut self.rest)));
        }
        let (step, rest) = next_step(self.rest, self.start)?;
        self.start = false;
        self.rest = rest;
        Some(step)
    }
}

/// The steps of a key in the path syntax that starts with a field name (as payload updates and
/// projections take it); `None` for any other key.
pub(crate) fn parsed(key: &str) -> Option<Vec<Step<'_>>> {
    parse(key)?;
    let steps: Vec<_> = steps(key).collect();
    matches!(steps.first(), Some(Step::Key(_))).then_some(steps)
}

/// Validates the whole key once; `None` when it is not in the path syntax.
fn parse(key: &str) -> Option<()> {
    let mut rest = key;
    let mut start = true;
    let mut any = false;
    while !rest.is_empty() || start {
        let (_, r) = next_step(rest, start)?;
        rest = r;
        start = false;
        any = true;
    }
    any.then_some(())
}

/// The next step and what follows it.
fn next_step(s: &str, start: bool) -> Option<(Step<'_>, &str)> {
    if s.is_empty() {
        return None;
    }
    if let Some(r) = s.strip_prefix('[') {
        let close = r.find(']')?;
        let inner = &r[..close];
        let step = if inner.is_empty() {
            Step::AllElements
        } else {
            Step::Element(inner.parse().ok()?)
        };
        return Some((step, &r[close + 1..]));
    }
    let s = if start { s } else { s.strip_prefix('.')? };
    if let Some(r) = s.strip_prefix('"') {
        let close = r.find('"')?;
        return Some((Step::Key(&r[..close]), &r[close + 1..]));
    }
    let end = s.find(['.', '[']).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((Step::Key(&s[..end]), &s[end..]))
}

/// Calls `f` on every value `key` reaches, until `f` returns false.
pub(crate) fn for_each_value(payload: &Payload, key: &str, f: &mut dyn FnMut(&Value) -> bool) {
    let mut it = steps(key);
    let Some(Step::Key(first)) = it.next() else {
        return;
    };
    if let Some(v) = payload.get(first) {
        walk(v, it, f);
    }
}

/// Returns false when `f` asked to stop.
fn walk<'k>(
    v: &Value,
    mut steps: impl Iterator<Item = Step<'k>> + Clone,
    f: &mut dyn FnMut(&Value) -> bool,
) -> bool {
    let Some(step) = steps.next() else {
        return f(v);
    };
    match (step, v) {
        (Step::Key(k), Value::Object(map)) => match map.get(k) {
            Some(child) => walk(child, steps, f),
            None => true,
        },
        (Step::Key(k), Value::Array(items)) => {
            for item in items {
                if !walk_key(item, k, steps.clone(), f) {
                    return false;
                }
            }
            true
        }
        (Step::AllElements, Value::Array(items)) => {
            for item in items {
                if !walk(item, steps.clone(), f) {
                    return false;
                }
            }
            true
        }
        (Step::Element(i), Value::Array(items)) => match items.get(i) {
            Some(item) => walk(item, steps, f),
            None => true,
        },
        _ => true,
    }
}

/// Applies key step `k` to an array element (recursing through nested arrays).
fn walk_key<'k>(
    v: &Value,
    k: &'k str,
    steps: impl Iterator<Item = Step<'k>> + Clone,
    f: &mut dyn FnMut(&Value) -> bool,
) -> bool {
    match v {
        Value::Object(map) => match map.get(k) {
            Some(child) => walk(child, steps, f),
            None => true,
        },
        Value::Array(items) => {
            for item in items {
                if !walk_key(item, k, steps.clone(), f) {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        let s: Vec<_> = steps("a.b[].c[2].\"d.e\"").collect();
        assert_eq!(
            s,
            vec![
                Step::Key("a"),
                Step::Key("b"),
                Step::AllElements,
                Step::Key("c"),
                Step::Element(2),
                Step::Key("d.e"),
            ]
        );
        // Not path syntax: taken as one literal name.
        assert_eq!(steps("a..b").collect::<Vec<_>>(), vec![Step::Key("a..b")]);
        assert_eq!(steps("").collect::<Vec<_>>(), vec![Step::Key("")]);
    }
}
