//! On plain stable tokio: one test leaves two tickers running when it returns, the other
//! leaves nothing behind.

use std::time::Duration;

#[taskscope::test]
async fn leaves_two_tickers_running() {
    for _ in 0..2 {
        tokio::spawn(async {
            let mut ticks = tokio::time::interval(Duration::from_millis(10));
            loop {
                ticks.tick().await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[taskscope::test]
async fn cleans_up_after_itself() {
    let ticker = tokio::spawn(async {
        let mut ticks = tokio::time::interval(Duration::from_millis(10));
        loop {
            ticks.tick().await;
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    ticker.abort();
    let _ = ticker.await;
}
