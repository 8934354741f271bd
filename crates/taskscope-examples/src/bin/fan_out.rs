//! [`taskscope_examples::fan_out`] on a multi-thread runtime.

#[taskscope::main]
async fn main() {
    taskscope_examples::fan_out::run().await;
}
