//! Series made from the request's range alone (graphite-web's `time`,
//! `sin`, `randomWalk`, `events`, `verticalLine`).

use super::{Run, list, wall_date};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("time", time_fn),
    ("timeFunction", time_fn),
    ("sin", sin_fn),
    ("sinFunction", sin_fn),
    ("randomWalk", random_walk),
    ("randomWalkFunction", random_walk),
    ("events", events),
    ("verticalLine", vertical_line),
];

/// One value per `step` from `from` while before `until`, as `f(t)`.
fn over_range(ctx: &Context<'_>, name: String, step: i64, f: impl FnMut(i64) -> f64) -> Result<Series, EvalError> {
    if step <= 0 {
        return Err(bad("step must be positive"));
    }
    let values = (ctx.from..ctx.until).step_by(step as usize).map(f).map(Some).collect();
    Ok(Series::new(name, ctx.from, ctx.until, step, values, ctx.xff))
}

fn time_fn(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let step = a.opt_int("step")?.unwrap_or(60);
    list(vec![over_range(ctx, a.string("name")?, step, |t| t as f64)?])
}

fn sin_fn(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let amplitude = a.opt_int("amplitude")?.unwrap_or(1) as f64;
    let step = a.opt_int("step")?.unwrap_or(60);
    list(vec![over_range(ctx, a.string("name")?, step, |t| (t as f64).sin() * amplitude)?])
}

/// `len` steps of a walk from 0 by uniform steps in [-0.5, 0.5)
/// (xorshift64* from `seed`).
fn walk(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed | 1;
    let mut current = 0.0;
    (0..len)
        .map(|_| {
            let value = current;
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let uniform = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            current += uniform - 0.5;
            value
        })
        .collect()
}

/// Random, so never equal to graphite-web's walk; seeded from the clock.
fn random_walk(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let step = a.opt_int("step")?.unwrap_or(60);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut steps = walk((ctx.until - ctx.from).max(0) as usize / step.max(1) as usize + 1, seed).into_iter();
    list(vec![over_range(ctx, a.string("name")?, step, |_| steps.next().unwrap_or_default())?])
}

/// graphite-web's `events`: per second of the range, how many stored
/// events carry all the tags (`*` alone: any event); null where none.
fn events(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let tags: Vec<String> = a.rest("tags").into_iter().filter_map(|v| if let Value::Str(s) = v { Some(s) } else { None }).collect();
    let name = format!("events(\"{}\")", tags.join("\", \""));
    let wanted: &[String] = if tags == ["*"] { &[] } else { &tags };
    let points = (ctx.until - ctx.from).max(0) as usize;
    let mut values: Vec<Option<f64>> = vec![None; points];
    for (when, _, body) in ctx.store.events(ctx.from, ctx.until).map_err(crate::graphite::eval::internal)? {
        let stored: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let has: Vec<&str> = stored["tags"].as_str().unwrap_or("").split_whitespace().collect();
        if !wanted.iter().all(|t| has.contains(&t.as_str())) {
            continue;
        }
        // An event at `until` falls past the list: graphite-web's IndexError.
        let slot =
            values.get_mut((when - ctx.from) as usize).ok_or_else(|| EvalError::Internal("events: list index out of range".into()))?;
        *slot = Some(slot.unwrap_or(0.0) + 1.0);
    }
    let mut s = Series::new(name, ctx.from, ctx.until, 1, values, ctx.xff);
    s.consolidation = Agg::Sum;
    list(vec![s])
}

fn vertical_line(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let ts = wall_date(&a.string("ts")?)?;
    if ts < ctx.from {
        return Err(bad(format!("verticalLine(): timestamp {ts} exists before start of range")));
    }
    if ts > ctx.until {
        return Err(bad(format!("verticalLine(): timestamp {ts} exists after end of range")));
    }
    let label = a.opt_string("label")?.unwrap_or_else(|| "None".into());
    list(vec![Series::new(label, ts, ts, 1, vec![Some(1.0); 2], ctx.xff)])
}

#[cfg(test)]
mod tests {
    use super::walk;

    #[test]
    fn random_walk_moves_by_less_than_half() {
        let w = walk(500, 42);
        assert_eq!(w[0], 0.0);
        assert!(w.windows(2).all(|p| (p[1] - p[0]).abs() <= 0.5));
        assert!(w.iter().any(|v| *v != 0.0));
        assert_ne!(walk(10, 1), walk(10, 2));
    }
}
