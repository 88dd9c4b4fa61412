//! Runs a few independent, deterministic jobs (the cross-validation folds and the final model)
//! on scoped threads.
//!
//! Owns [`map`]. Invariants: results are returned in job order whatever the scheduling, so the
//! output does not depend on the number of threads; a job whose thread panicked yields `None`
//! instead of propagating the panic.

/// Threads to use when asked for 0 ("automatic"): the machine's parallelism.
fn automatic() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f(0..jobs)` on up to `threads` threads (0 = one per core) and returns the results in
/// job order.
pub fn map<T: Send, F: Fn(usize) -> T + Sync>(jobs: usize, threads: usize, f: F) -> Vec<Option<T>> {
    let threads = if threads == 0 { automatic() } else { threads };
    let workers = threads.clamp(1, jobs.max(1));
    let mut out: Vec<Option<T>> = (0..jobs).map(|_| None).collect();
    if workers == 1 {
        for (j, slot) in out.iter_mut().enumerate() {
            *slot = Some(f(j));
        }
        return out;
    }
    let f = &f;
    let done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    (w..jobs)
                        .step_by(workers)
                        .map(|j| (j, f(j)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (j, t) in done {
        if let Some(slot) = out.get_mut(j) {
            *slot = Some(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_in_job_order_for_any_thread_count() {
        for threads in [0, 1, 2, 3, 8] {
            let r = map(5, threads, |j| j * 10);
            assert_eq!(r, vec![Some(0), Some(10), Some(20), Some(30), Some(40)]);
        }
        assert!(map(0, 2, |j| j).is_empty());
    }
}
