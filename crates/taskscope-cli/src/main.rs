//! `taskscope`: finds what makes a tokio program slow or stuck.
#![allow(dead_code)]
mod duration;
mod model;
mod report;
fn main() {}
