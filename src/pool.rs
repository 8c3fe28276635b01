//! The one worker pool: a fixed number of scoped threads taking items from a shared
//! queue in order, used wherever layers are handled in parallel (verifying, writing
//! the layers of a directory output).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Run `work` on every item on up to `threads` threads (at least one, at most one per
/// item). After the first error no new item is started (those started finish), so the
/// first error in item order is among the results. Returns each item's result, `None`
/// for items never started.
pub(crate) fn run_all<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Vec<Option<Result<R, E>>> {
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Result<R, E>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        break;
                    };
                    let result = work(item);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                })
            })
            .collect();
        // Join each thread (not only its closure) so none is still exiting when this
        // returns.
        for worker in workers {
            let _ = worker.join();
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// How many threads the machine offers.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_errors_stop_new_work() {
        let items: Vec<u32> = (0..100).collect();
        let done = run_all(&items, 4, |&i| Ok::<u32, ()>(i * 2));
        assert_eq!(done.len(), 100);
        assert!(done
            .iter()
            .enumerate()
            .all(|(i, r)| *r == Some(Ok(i as u32 * 2))));
        let stopped = run_all(&items, 1, |&i| if i == 10 { Err(i) } else { Ok(i) });
        assert_eq!(stopped[10], Some(Err(10)));
        assert!(stopped[..10].iter().all(|r| matches!(r, Some(Ok(_)))));
        assert!(stopped[11..].iter().all(Option::is_none));
        assert!(run_all(&[] as &[u32], 4, |&i| Ok::<u32, ()>(i)).is_empty());
    }
}
