//! [`taskscope_examples::fan_out`] on a current-thread runtime.

#[taskscope::main(flavor = "current_thread")]
async fn main() {
    taskscope_examples::fan_out::run().await;
}
