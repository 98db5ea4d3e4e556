//! Each expression kind against values computed by hand (Qdrant's formulas), and Qdrant's errors.

use serde_json::{json, Value};

use super::*;
use crate::PointId;

/// A candidate found by two prefetches (scores 1 and 2) with this payload.
struct Point {
    scores: Vec<Option<f32>>,
    payload: Payload,
}

impl Candidate for Point {
    fn score(&self, prefetch: usize) -> Option<f32> {
        self.scores.get(prefetch).copied().flatten()
    }

    fn payload(&self) -> &Payload {
        &self.payload
    }

    fn matches(&self, condition: &Condition) -> bool {
        condition.matches(&PointId::Num(1), &self.payload)
    }
}

fn point(payload: Value) -> Point {
    Point {
        scores: vec![Some(1.0), Some(2.0)],
        payload: payload.as_object().unwrap().clone(),
    }
}

fn fixture() -> Point {
    point(json!({
        "number": 85.0,
        "nested": {"inner": 2.5},
        "array_of_one": [1.25],
        "array": [1.2, 2.3],
        "objects": [{"v": 3.0}],
        "tag": "h1",
        "text": "not a number",
        "geo": {"lat": 25.628482424190565, "lon": -100.23881855976},
        "when": "2025-03-18T00:00:01.5Z",
    }))
}

fn var(s: &str) -> Expression {
    Expression::Variable(Variable::parse(s).unwrap())
}

fn c(v: f64) -> Expression {
    Expression::Constant(v)
}

fn b(e: Expression) -> Box<Expression> {
    Box::new(e)
}

fn eval_with(e: Expression, defaults: Value, p: &Point) -> Result<f32> {
    let defaults = defaults
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (Variable::parse(k).unwrap(), v.clone()))
        .collect();
    Formula {
        expression: e,
        defaults,
    }
    .score(p)
}

fn eval(e: Expression) -> f32 {
    eval_with(e, json!({}), &fixture()).unwrap()
}

fn error(e: Expression) -> String {
    eval_with(e, json!({}), &fixture()).unwrap_err().to_string()
}

fn close(got: f32, want: f64) {
    assert!(
        (f64::from(got) - want).abs() <= want.abs() * 1e-6 + 1e-9,
        "got {got}, want {want}"
    );
}

#[test]
fn variables_parse_as_in_qdrant() {
    assert_eq!(Variable::parse("$score"), Ok(Variable::Score(0)));
    assert_eq!(Variable::parse("$score[0]"), Ok(Variable::Score(0)));
    assert_eq!(Variable::parse("$score[12]"), Ok(Variable::Score(12)));
    assert_eq!(
        Variable::parse("a.b[0].c"),
        Ok(Variable::Payload("a.b[0].c".into()))
    );
    for bad in [
        "$score.x",
        "$score[]",
        "$score[1][2]",
        "$scores",
        "$other",
        "",
    ] {
        assert!(Variable::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Variable::parse("$price").unwrap_err(),
        "Invalid reserved word: $price"
    );
    assert_eq!(Variable::Score(3).to_string(), "$score[3]");
}

#[test]
fn constants_scores_and_payload_numbers() {
    assert_eq!(eval(c(5.0)), 5.0);
    assert_eq!(eval(var("$score")), 1.0);
    assert_eq!(eval(var("$score[0]")), 1.0);
    assert_eq!(eval(var("$score[1]")), 2.0);
    assert_eq!(eval(var("number")), 85.0);
    assert_eq!(eval(var("nested.inner")), 2.5);
    assert_eq!(eval(var("objects[].v")), 3.0);
    // An array of one value is that value.
    assert_eq!(eval(var("array_of_one")), 1.25);
}

#[test]
fn a_point_missing_from_a_prefetch_scores_its_default_or_0() {
    let only_second = Point {
        scores: vec![None, Some(2.0)],
        payload: Payload::new(),
    };
    assert_eq!(
        eval_with(var("$score"), json!({}), &only_second).unwrap(),
        0.0
    );
    assert_eq!(
        eval_with(var("$score"), json!({"$score[0]": 0.5}), &only_second).unwrap(),
        0.5
    );
    // `$score` and `$score[0]` are one variable, in defaults too.
    assert_eq!(
        eval_with(var("$score[0]"), json!({"$score": 0.25}), &only_second).unwrap(),
        0.25
    );
    // A prefetch the request does not have: the default, else 0; a non-number default counts as
    // none.
    let p = fixture();
    assert_eq!(
        eval_with(var("$score[3]"), json!({"$score[3]": 1.5}), &p).unwrap(),
        1.5
    );
    assert_eq!(eval_with(var("$score[10]"), json!({}), &p).unwrap(), 0.0);
    assert_eq!(
        eval_with(var("$score[3]"), json!({"$score[3]": "x"}), &p).unwrap(),
        0.0
    );
}

#[test]
fn defaults_and_missing_variables() {
    let p = fixture();
    assert_eq!(
        eval_with(var("price"), json!({"price": 7}), &p).unwrap(),
        7.0
    );
    // The payload's value wins over the default.
    assert_eq!(
        eval_with(var("number"), json!({"number": 7}), &p).unwrap(),
        85.0
    );
    assert_eq!(
        error(var("price")),
        "Expected number value for price in the payload and/or in the formula defaults. \
         Error: No value found in a payload nor defaults"
    );
    assert_eq!(
        error(var("text")),
        "Expected number value for text in the payload and/or in the formula defaults. \
         Error: Value is not a number"
    );
    // Several values are not a number.
    assert!(error(var("array")).ends_with("Error: Value is not a number"));
    // A default of the wrong type is refused like a payload value of the wrong type.
    assert!(eval_with(var("price"), json!({"price": "7"}), &p)
        .unwrap_err()
        .to_string()
        .ends_with("Error: Value is not a number"));
    // An empty array is no value.
    let empty = point(json!({"price": []}));
    assert_eq!(
        eval_with(var("price"), json!({"price": 3}), &empty).unwrap(),
        3.0
    );
}

#[test]
fn conditions_score_1_or_0() {
    let cond = |v: Value| Expression::Condition(Box::new(serde_json::from_value(v).unwrap()));
    assert_eq!(
        eval(cond(json!({"key": "tag", "match": {"any": ["h1", "h2"]}}))),
        1.0
    );
    assert_eq!(
        eval(cond(json!({"key": "tag", "match": {"value": "h3"}}))),
        0.0
    );
    assert_eq!(
        eval(cond(
            json!({"must_not": [{"key": "tag", "match": {"value": "h3"}}]})
        )),
        1.0
    );
}

#[test]
fn arithmetic() {
    assert_eq!(
        eval(Expression::Sum(vec![c(1.0), var("$score"), var("number")])),
        87.0
    );
    assert_eq!(eval(Expression::Sum(vec![])), 0.0);
    assert_eq!(
        eval(Expression::Mult(vec![
            c(2.0),
            var("$score[1]"),
            var("number")
        ])),
        340.0
    );
    assert_eq!(eval(Expression::Mult(vec![])), 1.0);
    assert_eq!(eval(Expression::Neg(b(c(10.0)))), -10.0);
    assert_eq!(eval(Expression::Abs(b(c(-2.5)))), 2.5);
    let div = |l, r, d| Expression::Div {
        left: b(l),
        right: b(r),
        by_zero_default: d,
    };
    assert_eq!(eval(div(c(10.0), var("$score[1]"), None)), 5.0);
    assert_eq!(eval(div(c(1.0), c(0.0), Some(7.0))), 7.0);
    assert_eq!(eval(Expression::Sqrt(b(c(16.0)))), 4.0);
    assert_eq!(
        eval(Expression::Pow {
            base: b(c(2.0)),
            exponent: b(c(10.0))
        }),
        1024.0
    );
    close(eval(Expression::Exp(b(c(1.0)))), std::f64::consts::E);
    assert_eq!(eval(Expression::Log10(b(c(1000.0)))), 3.0);
    close(eval(Expression::Ln(b(c(std::f64::consts::E)))), 1.0);
}

#[test]
fn zero_short_cuts_skip_what_follows() {
    // Qdrant does not evaluate the rest of a product after a zero factor, nor the divisor of a
    // zero dividend: the missing variable there is no error.
    assert_eq!(eval(Expression::Mult(vec![c(0.0), var("missing")])), 0.0);
    assert_eq!(
        eval(Expression::Div {
            left: b(c(0.0)),
            right: b(var("missing")),
            by_zero_default: None
        }),
        0.0
    );
    assert!(error(Expression::Mult(vec![c(1.0), var("missing")])).contains("missing"));
}

#[test]
fn non_finite_results_are_errors() {
    let msg = |e: &str| format!("The expression {e} produced a non-finite number");
    assert_eq!(
        error(Expression::Div {
            left: b(c(1.0)),
            right: b(c(0.0)),
            by_zero_default: None
        }),
        msg("1/0 = inf")
    );
    assert_eq!(error(Expression::Sqrt(b(c(-3.0)))), msg("√-3 = NaN"));
    assert_eq!(
        error(Expression::Pow {
            base: b(c(-1.0)),
            exponent: b(c(0.4))
        }),
        msg("-1^0.4 = NaN")
    );
    assert_eq!(error(Expression::Log10(b(c(0.0)))), msg("log10(0) = -inf"));
    assert_eq!(error(Expression::Ln(b(c(0.0)))), msg("ln(0) = -inf"));
    assert_eq!(error(Expression::Exp(b(c(1000.0)))), msg("exp(1000) = inf"));
    // Finite as f64, but not as the f32 a score is.
    assert!(error(Expression::Pow {
        base: b(c(10.0)),
        exponent: b(c(39.0))
    })
    .ends_with("as f32 = inf produced a non-finite number"));
}

#[test]
fn geo_distance_is_haversine_in_meters() {
    let origin = GeoPoint {
        lon: -100.43383200156751,
        lat: 25.717877679163667,
    };
    let dist = |to: &str| Expression::GeoDistance {
        origin,
        to: to.into(),
    };
    // By hand: haversine with the Earth's mean radius 6 371 008.8 m; Qdrant's own test has the same
    // values.
    close(eval(dist("geo")), 21_926.494_151_786_308);
    let p = fixture();
    close(
        eval_with(
            dist("nowhere"),
            json!({"nowhere": {"lat": 25.0, "lon": -100.0}}),
            &p,
        )
        .unwrap(),
        90_951.296_002_982_18,
    );
    assert_eq!(
        error(dist("nowhere")),
        "Expected geo point value for nowhere in the payload and/or in the formula defaults. \
         Error: No value found in a payload nor defaults"
    );
    assert!(error(dist("number")).starts_with("Expected geo point value for number"));
}

#[test]
fn datetimes_are_seconds_since_the_epoch() {
    // 2025-03-18 is 31 + 28 + 17 = 76 days after 2025-01-01 (1 735 689 600 s).
    let day = 1_735_689_600.0 + 76.0 * 86_400.0;
    let t = Datetime::parse("2025-03-18").unwrap();
    assert_eq!(eval(Expression::Datetime(t)), day as f32);
    let at_key = eval_with(
        Expression::Sum(vec![Expression::DatetimeKey("when".into()), c(-day)]),
        json!({}),
        &fixture(),
    );
    assert_eq!(at_key.unwrap(), 1.5);
    let p = fixture();
    assert_eq!(
        eval_with(
            Expression::Sum(vec![Expression::DatetimeKey("then".into()), c(-day)]),
            json!({"then": "2025-03-18T00:00:10Z"}),
            &p
        )
        .unwrap(),
        10.0
    );
    assert!(error(Expression::DatetimeKey("number".into())).ends_with("Value is not a string"));
    assert!(error(Expression::DatetimeKey("text".into())).contains("not in a supported"));
}

#[test]
fn decays() {
    let decay = |kind, x: f64, target: Option<f64>, midpoint, scale| {
        Expression::Decay(Decay::new(kind, c(x), target.map(c), midpoint, scale).unwrap())
    };
    use DecayKind::*;
    // Defaults: target 0, scale 1, midpoint 0.5.
    // lin: λ = (1 − 0.5) / 1; 1 − 0.5·|0.5| = 0.75, and never below 0.
    assert_eq!(eval(decay(Lin, 0.5, None, None, None)), 0.75);
    assert_eq!(eval(decay(Lin, -5.0, None, None, None)), 0.0);
    // exp: λ = ln 0.5; exp(ln 0.5 · 2) = 0.25.
    close(eval(decay(Exp, 2.0, None, None, None)), 0.25);
    // gauss: λ = ln 0.5; exp(ln 0.5 · 2²) = 0.0625.
    close(eval(decay(Gauss, 2.0, None, None, None)), 0.0625);
    // At `scale` from the target each is `midpoint`, on either side.
    for kind in [Lin, Exp, Gauss] {
        close(
            eval(decay(kind, 13.0, Some(10.0), Some(0.2), Some(3.0))),
            0.2,
        );
        close(
            eval(decay(kind, 7.0, Some(10.0), Some(0.2), Some(3.0))),
            0.2,
        );
        assert_eq!(
            eval(decay(kind, 10.0, Some(10.0), Some(0.2), Some(3.0))),
            1.0
        );
    }
    // gauss at half the scale: exp(ln 0.2 / 9 · 1.5²) = 0.2^(1/4).
    close(
        eval(decay(Gauss, 11.5, Some(10.0), Some(0.2), Some(3.0))),
        0.2f64.powf(0.25),
    );
    let refused =
        |kind, midpoint, scale| Decay::new(kind, c(0.0), None, midpoint, scale).unwrap_err();
    assert_eq!(
        refused(Lin, Some(1.5), None),
        "Linear decay midpoint should be in the range [0.0, 1.0], got 1.5."
    );
    assert!(Decay::new(Lin, c(0.0), None, Some(1.0), None).is_ok());
    assert_eq!(
        refused(Exp, Some(1.0), None),
        "Decay midpoint should be in the range (0.0, 1.0), got 1."
    );
    assert!(refused(Gauss, Some(0.0), None).starts_with("Decay midpoint"));
    assert_eq!(
        refused(Gauss, None, Some(0.0)),
        "Decay scale should be non-zero positive, got 0."
    );
}

#[test]
fn conditions_are_listed_in_tree_order() {
    let cond = |k: &str| {
        Expression::Condition(Box::new(
            serde_json::from_value(json!({"key": k, "match": {"value": 1}})).unwrap(),
        ))
    };
    let f = Formula {
        expression: Expression::Sum(vec![
            cond("a"),
            Expression::Mult(vec![c(2.0), cond("b")]),
            Expression::Decay(
                Decay::new(DecayKind::Lin, cond("c"), Some(cond("d")), None, None).unwrap(),
            ),
        ]),
        defaults: HashMap::new(),
    };
    let keys: Vec<String> = f
        .conditions()
        .iter()
        .map(|c| match c {
            Condition::Field(f) => f.key.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
}
