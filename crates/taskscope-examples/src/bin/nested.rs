//! Tasks spawning tasks: taskscope links each to its parent.

#[tokio::main]
async fn main() {
    taskscope::init();
    let parent = tokio::task::Builder::new()
        .name("parent")
        .spawn(async {
            let child = tokio::task::Builder::new()
                .name("child")
                .spawn(async {
                    let grandchild = tokio::task::Builder::new()
                        .name("grandchild")
                        .spawn(async { 3 })
                        .unwrap();
                    grandchild.await.unwrap() + 2
                })
                .unwrap();
            child.await.unwrap() + 1
        })
        .unwrap();
    println!("nested: {}", parent.await.unwrap());
}
