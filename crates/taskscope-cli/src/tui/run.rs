//! The loop: one `select!` over terminal input, the live link and a render tick. Input
//! and link events change the app; the loop does the I/O (drawing, quitting).

use std::future::pending;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream};
use ratatui::layout::Rect;
use tokio_stream::StreamExt;

use super::app::App;
use super::keys::Outcome;
use super::live::{Handle, LinkEvent};
use super::terminal::Guard;

/// How often the screen is redrawn without input: ongoing stalls tick, replay plays.
const TICK: Duration = Duration::from_millis(100);

/// Link events folded in before the next draw: enough to take a large snapshot in a few
/// frames, few enough that keys still answer at once.
const BURST: usize = 512;

/// Runs the dashboard until the user quits (or SIGTERM/SIGHUP ask it to stop).
pub(crate) async fn run(mut app: App, mut link: Option<Handle>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut guard = Guard::enter().context("cannot take over the terminal")?;
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let size = guard
            .terminal
            .size()
            .context("cannot read the terminal size")?;
        app.size = Rect::new(0, 0, size.width, size.height);
        app.tick(Instant::now());
        guard
            .terminal
            .draw(|frame| frame.render_widget(&app, frame.area()))
            .context("cannot draw")?;
        let outcome = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => on_event(&mut app, event),
                Some(Err(error)) => return Err(error).context("cannot read the terminal"),
                None => Outcome::Quit,
            },
            Some(event) = recv(&mut link) => {
                app.on_link(event);
                if let Some(link) = &mut link {
                    for _ in 0..BURST {
                        match link.events.try_recv() {
                            Ok(event) => app.on_link(event),
                            Err(_) => break,
                        }
                    }
                }
                Outcome::Continue
            }
            _ = tick.tick() => Outcome::Continue,
            _ = terminate.recv() => Outcome::Quit,
            _ = hangup.recv() => Outcome::Quit,
        };
        match outcome {
            Outcome::Quit => return Ok(()),
            Outcome::TakeDump => {
                let asked = link.as_ref().is_some_and(Handle::request_dump);
                app.dump_requested(asked);
            }
            Outcome::Continue => {}
        }
    }
}

fn on_event(app: &mut App, event: Event) -> Outcome {
    match event {
        Event::Key(key) => app.on_key(key),
        Event::Mouse(mouse) => app.on_mouse(mouse),
        _ => Outcome::Continue,
    }
}

async fn recv(link: &mut Option<Handle>) -> Option<LinkEvent> {
    match link {
        Some(link) => link.events.recv().await,
        None => pending().await,
    }
}
