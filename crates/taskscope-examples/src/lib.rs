//! Small tokio programs with one fault each, and a healthy one that uses the same APIs
//! without faults. Each faulty spawn carries a `// FAULT: <kind>` comment on its line, so
//! tests can compute the exact spawn location a finding must name; the line a stalled task
//! blocks on carries `// BLOCKS`, the line its captured stack must name.
//!
//! | binary | fault |
//! |---|---|
//! | `healthy` | none: channels, `Notify`, timers, `select!`, `JoinSet`, locks, TCP |
//! | `blocking_sleep` | a task calls `std::thread::sleep` inside async code (stall) |
//! | `cpu_loop` | a task computes for 500 ms without yielding (stall) |
//! | `fifo_read` | a task blocks in a `std::fs` read (of a slow FIFO) (stall) |
//! | `mutex_wait` | a task waits for a `std::sync::Mutex` another thread holds (stall) |
//! | `lost_waker` | a future returns `Pending` without keeping its waker (lost waker) |
//! | `leak_at_shutdown` | a detached task is still running when `main` returns |
//! | `panicking` | a task panics |
//! | `aborted` | an idle task is aborted (not a fault: an outcome to report) |
//! | `nested` | tasks spawning tasks (parent/child links) |
//! | `waiting_at_shutdown` | tasks waiting on channels, timers, locks, I/O at shutdown (none lost a waker) |
//! | `main_stall` | the body of `#[taskscope::main]` itself blocks (stall of the `block_on` task) |
//! | `body_stall`, `body_stall_current_thread` | the body of `#[tokio::main]` blocks right after `taskscope::init()` (stall of the body, watched from outside) |
//! | `body_idle`, `body_idle_current_thread` | none: a `#[tokio::main]` body that calls `taskscope::init()` and then only waits |
//! | `init_in_task` | none of its own: `taskscope::init()` called from a spawned task, where the body of `main` cannot be watched (said on stderr and in a note) |
//! | `stall_storm` | thousands of 3 ms stalls, all sampled, whose results must stay right |
//! | `workers_main` | a healthy multi-thread `#[taskscope::main]` (worker loops are blocking tasks) |
//! | `forever` | runs until killed, stalling now and then (recordings cut by SIGKILL) |
//! | `metrics_stall` | a task blocks its worker 300 ms every half second (stalls), scraped through `TASKSCOPE_METRICS_BIND`; tasks from eight more sites wait |
//! | `console_app` | instrumented with `console_subscriber::init()`, not the probe: a task blocking its worker 2.5 s now and then (stall) and a lost waker, read over tokio-console's protocol |
//! | `console_served` | the probe with `TASKSCOPE_CONSOLE_BIND`: five tasks from one line, for tokio-console to see |
//! | `leaky_tests` (test target) | a `#[tokio::test]` that leaks a task |
//! | `starved` | none of its own: a 25 ms poll made to last about 200 ms by six busy threads sharing its CPU (an overloaded machine, not a stall) |
//! | `custom_panic_hook` | replaces the process's panic hook with a slow one of its own, then a task panics (a panic, not a stall) |
//! | `fan_out`, `fan_out_current_thread` | none: parents driving children through `FuturesUnordered` and `join_all` on 1–2 ms sleeps, with a channel hand-off ([`fan_out`]); dumps must leave every child running |
//! | `churn_at_exit` | 200 ticking tasks and a storm of short ones still alive when `main` returns (a leak, dumped at shutdown on deep run queues) |
//! | `service_global_filter` | the `service` with its `EnvFilter` in front of every layer, the probe's included (tokio's task spans filtered away: `check` cannot judge); `SERVICE_FILTER=per-layer` puts it on the log layer instead |
//! | `service`, `service_layer`, `service_plain` | none: a key-value service with its own logging, `Result` from `main` and a graceful shutdown ([`service`]), under `#[taskscope::main]`, the probe's layer, and no probe |

pub mod fan_out;
pub mod service;
