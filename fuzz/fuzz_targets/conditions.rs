//! The condition language (accessControl, errorMapping) on arbitrary source text: parse, then
//! evaluate under a few variable assignments. Properties: a condition in parentheses parses to the
//! same tree, `not (c)` to its negation; error columns point into the source. Also the variable
//! locations (`VarSource::parse`, JSONPath lookups) and `${var}` substitution on the same text.
#![no_main]

use cagate_core::conditions::{self, compare, eval, json_lookup, parse, substitute, Expr, Op, Val, VarSource};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const NAMES: [&str; 6] = ["a", "b", "c", "userId", "pathUserId", "q"];

fn s(x: &str) -> Val {
    Val::Str(x.to_string())
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let vars: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let assignments: [Vec<Val>; 3] = [
        vec![Val::Null; 6],
        vec![s("x"), Val::Num(2.0), Val::Null, s("42"), s("42"), Val::Bool(true)],
        vec![s("10"), s("abc"), Val::Num(-1.5), s(""), s("中"), s("TRUE")],
    ];
    match parse(&src, &vars) {
        Ok(e) => {
            for vals in &assignments {
                for r in [0.0, 0.5, 0.999_999] {
                    let var = |i: usize| vals.get(i).cloned().unwrap_or(Val::Null);
                    let v = eval(&e, &var, &mut || r);
                    assert_eq!(eval(&Expr::Not(Box::new(e.clone())), &var, &mut || r), !v);
                }
            }
            // Wrapping adds nesting levels, which the parser bounds: a refusal for that is fine.
            let too_deep = |r: &Result<Expr, conditions::SyntaxError>| r.as_ref().is_err_and(|e| e.message.contains("nested too deeply"));
            let wrapped = parse(&format!("({src})"), &vars);
            if !too_deep(&wrapped) {
                assert_eq!(wrapped.as_ref(), Ok(&e), "({src}) parses differently");
            }
            let negated = parse(&format!("not ({src})"), &vars);
            if !too_deep(&negated) {
                assert_eq!(negated, Ok(Expr::Not(Box::new(e))), "not ({src}) is not the negation");
            }
        }
        Err(err) => {
            assert!(err.column >= 1 && err.column <= src.chars().count() + 1, "column {} out of {src:?}", err.column);
            assert!(!err.message.is_empty());
        }
    }
    let _ = VarSource::parse(&src);
    if let Ok(VarSource::BodyJsonField(steps)) = VarSource::parse(&format!("BodyJsonField:{src}")) {
        let doc = json!({ "a": { "b": [0, { "c": "x" }] }, "result_code": "OK", "na.me": 1 });
        let _ = json_lookup(&doc, &steps);
    }
    let values = [s("42"), Val::Num(3.5), Val::Null, Val::Bool(false), s("中"), s("${a}")];
    let _ = substitute(&src, &vars, &|i| values.get(i).cloned().unwrap_or(Val::Null));
    for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
        let x = s(&src);
        let _ = compare(&x, op, &Val::Num(1.0));
        let same = compare(&x, op, &x);
        assert_eq!(same, matches!(op, Op::Eq | Op::Le | Op::Ge), "a string compared with itself: {op:?}");
    }
    let _ = conditions::VarSource::parse("XFF:-1");
}

