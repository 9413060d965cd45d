//! The flattened size of a term, with shared subterms counted every time they
//! are reached: what copying the term to another process, comparing it,
//! hashing it or flattening it as iodata costs the VM.
//!
//! A term of a few hundred words on the heap can flatten to terabytes, and the
//! VM walks it in one non-yielding call, so the walk here stops as soon as the
//! running total passes the caller's limit: its work is bounded by the limit,
//! never by the flattened size. Each visited node adds at least the cost of
//! the children it pushes, so the number of visits is bounded by the limit too.
//!
//! Funs (whose environment a NIF cannot read), bitstrings that are not whole
//! bytes and integers wider than 64 bits are "opaque": the walk returns them
//! and the caller measures them itself and calls again with their costs,
//! keyed by identity (the term word), not by equality, which would walk them.

use std::collections::{HashMap, HashSet};

use rustler::types::map::MapIterator;
use rustler::types::tuple::get_tuple;
use rustler::{Binary, Encoder, Env, NifResult, Term, TermType};

mod atoms {
    rustler::atoms! { ok, over, dirty, opaque, iodata }
}

/// Nodes a call on a normal scheduler may visit before it hands the walk to a
/// dirty scheduler (well under a millisecond of work).
const SCHEDULER_BUDGET: u64 = 50_000;

/// How a node is counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Measure {
    /// Bytes a copy of the term takes: words times eight, plus binary bytes.
    Term,
    /// Bytes an iodata flattener writes, plus one per list cell (the walk).
    Iodata,
}

/// The cost of one node of `words` heap words and `bytes` of binary payload.
fn node_cost(measure: Measure, words: u64, bytes: u64) -> u64 {
    match measure {
        Measure::Term => 8 * words + bytes,
        Measure::Iodata => bytes.max(1),
    }
}

enum Outcome<'a> {
    Size(u64),
    Over,
    Budget,
    Opaque(Vec<Term<'a>>),
}

/// Walk `term`, stopping past `limit` or after `budget` nodes.
fn measure<'a>(
    term: Term<'a>,
    limit: u64,
    known: &HashMap<usize, u64>,
    measure: Measure,
    budget: Option<u64>,
    visits: &mut u64,
) -> NifResult<Outcome<'a>> {
    let mut stack = vec![term];
    let mut total: u64 = 0;
    let mut opaque: Vec<Term<'a>> = Vec::new();
    let mut opaque_seen: HashSet<usize> = HashSet::new();
    while let Some(t) = stack.pop() {
        *visits += 1;
        if budget.is_some_and(|b| *visits > b) {
            return Ok(Outcome::Budget);
        }
        let cost = match t.get_type() {
            TermType::List => {
                if t.is_empty_list() {
                    0
                } else {
                    let (head, tail) = t.list_get_cell()?;
                    stack.push(tail);
                    stack.push(head);
                    node_cost(measure, 2, 0)
                }
            }
            TermType::Tuple => {
                let elements = get_tuple(t)?;
                let words = 1 + elements.len() as u64;
                stack.extend(elements);
                // A tuple in iodata is refused by the flattener at once.
                match measure {
                    Measure::Term => node_cost(measure, words, 0),
                    Measure::Iodata => words,
                }
            }
            TermType::Map => {
                let mut pairs: u64 = 0;
                for (k, v) in MapIterator::new(t).ok_or(rustler::Error::BadArg)? {
                    stack.push(k);
                    stack.push(v);
                    pairs += 1;
                }
                let words = 3 + 2 * pairs;
                match measure {
                    Measure::Term => node_cost(measure, words, 0),
                    Measure::Iodata => words,
                }
            }
            TermType::Binary => match Binary::from_term(t) {
                Ok(b) => node_cost(measure, 2, b.len() as u64),
                Err(_) => opaque_cost(t, known, &mut opaque, &mut opaque_seen),
            },
            TermType::Integer => match t.decode::<i64>() {
                // Integers of up to 59 bits are immediate.
                Ok(n) if (-(1i64 << 59)..(1i64 << 59)).contains(&n) => {
                    node_cost(measure, 0, 0).min(1)
                }
                Ok(_) => node_cost(measure, 2, 0),
                Err(_) => opaque_cost(t, known, &mut opaque, &mut opaque_seen),
            },
            TermType::Float => node_cost(measure, 2, 0),
            TermType::Atom | TermType::Pid | TermType::Port => node_cost(measure, 0, 0).min(1),
            TermType::Ref => node_cost(measure, 4, 0),
            TermType::Fun | TermType::Unknown => {
                opaque_cost(t, known, &mut opaque, &mut opaque_seen)
            }
        };
        total = total.saturating_add(cost);
        if total > limit {
            return Ok(Outcome::Over);
        }
    }
    if opaque.is_empty() {
        Ok(Outcome::Size(total))
    } else {
        Ok(Outcome::Opaque(opaque))
    }
}

/// The cost the caller gave for an opaque term, or 0 and a note to ask for it.
fn opaque_cost<'a>(
    t: Term<'a>,
    known: &HashMap<usize, u64>,
    opaque: &mut Vec<Term<'a>>,
    seen: &mut HashSet<usize>,
) -> u64 {
    let key = t.as_c_arg();
    match known.get(&key) {
        Some(&cost) => cost,
        None => {
            if seen.insert(key) {
                opaque.push(t);
            }
            1
        }
    }
}

fn run<'a>(
    env: Env<'a>,
    term: Term<'a>,
    limit: u64,
    known: Vec<(Term<'a>, u64)>,
    mode: Term<'a>,
    budget: Option<u64>,
) -> NifResult<Term<'a>> {
    let mut visits: u64 = 0;
    let measure_kind = if mode == atoms::iodata().to_term(env) {
        Measure::Iodata
    } else {
        Measure::Term
    };
    let known: HashMap<usize, u64> = known.into_iter().map(|(t, c)| (t.as_c_arg(), c)).collect();
    let outcome = measure(term, limit, &known, measure_kind, budget, &mut visits)?;
    if let Some(b) = budget {
        // On a normal scheduler: charge the walk to the calling process, so
        // a loop of walks is scheduled out like any other work.
        let percent = (visits.saturating_mul(100) / b).clamp(1, 100) as i32;
        rustler::schedule::consume_timeslice(env, percent);
    }
    Ok(match outcome {
        Outcome::Size(n) => (atoms::ok(), n).encode(env),
        Outcome::Over => atoms::over().encode(env),
        Outcome::Budget => atoms::dirty().encode(env),
        Outcome::Opaque(ts) => (atoms::opaque(), ts).encode(env),
    })
}

/// `flat_size(Term, Limit, Known, Mode)`: `{ok, Cost}`, `over`, `{opaque,
/// Terms}`, or `dirty` when the walk needs more than a short NIF call (then
/// call `flat_size_dirty/4`).
#[rustler::nif]
fn flat_size<'a>(
    env: Env<'a>,
    term: Term<'a>,
    limit: u64,
    known: Vec<(Term<'a>, u64)>,
    mode: Term<'a>,
) -> NifResult<Term<'a>> {
    run(env, term, limit, known, mode, Some(SCHEDULER_BUDGET))
}

/// `flat_size/4` without a budget, on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn flat_size_dirty<'a>(
    env: Env<'a>,
    term: Term<'a>,
    limit: u64,
    known: Vec<(Term<'a>, u64)>,
    mode: Term<'a>,
) -> NifResult<Term<'a>> {
    run(env, term, limit, known, mode, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_cost_counts_words_and_bytes() {
        assert_eq!(node_cost(Measure::Term, 2, 0), 16);
        assert_eq!(node_cost(Measure::Term, 2, 100), 116);
    }

    #[test]
    fn iodata_cost_is_at_least_one_per_node() {
        assert_eq!(node_cost(Measure::Iodata, 2, 0), 1);
        assert_eq!(node_cost(Measure::Iodata, 2, 100), 100);
    }
}
