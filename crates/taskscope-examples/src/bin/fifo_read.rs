//! A task reads a file with `std::fs` inside async code, and the read blocks: here a FIFO
//! whose writer takes its time, as a slow disk or network mount would.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

fn read_settings(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap(); // BLOCKS
    text
}

#[tokio::main]
async fn main() {
    taskscope::init();
    let dir = std::env::temp_dir().join(format!("taskscope-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("settings");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo");
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_path)
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        std::io::Write::write_all(&mut file, b"verbose = true\n").unwrap();
    });
    let reader = tokio::spawn(async move { read_settings(&fifo) }); // FAULT: stall
    let text = reader.await.unwrap();
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    println!("fifo_read: {}", text.trim());
}
