//! The dashboard's state: the model being watched, where it comes from, and what the
//! user is looking at. Pure: time comes in through [`App::tick`], input through
//! [`App::on_key`](super::keys) and [`App::on_link`]; drawing is `impl Widget for &App`.

use std::time::{Duration, Instant};

use ratatui::layout::Rect;

use super::live::LinkEvent;
use super::replay::Player;
use super::theme::Theme;
use super::viewmodel::findings::Findings;
use super::viewmodel::metrics::Counts;
use super::viewmodel::resources;
use super::viewmodel::rows::{self, Item, Query, Row};
use super::viewmodel::selection::Selection;
use super::viewmodel::waits::{self, Group};
use crate::model::judge::policy::Policy;
use crate::model::stall::Phase;
use crate::model::task::Kind;
use crate::model::{LocationId, Model};

/// How often the table and the judge's flags are recomputed while data flows in. Often
/// enough that a stall shows up at once, rarely enough that 100k tasks stay cheap.
pub(crate) const REFRESH: Duration = Duration::from_millis(250);

/// The screen shown; `Task` is the details of one task, `Site` those of a spawn site whose
/// short-lived tasks the probe counted instead of sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    Tasks,
    Task(u64),
    Site(LocationId),
    Stalls,
    Leaks,
    Runtime,
    /// Live tasks grouped by the `.await` they are parked on.
    Waiting,
    /// Locks, semaphores and joined tasks: who holds them, who waits on them.
    Resources,
    /// What every thread did over the last seconds.
    Timeline,
}

impl Screen {
    /// The tabs, in tab-bar order.
    pub(crate) const TABS: [Self; 7] = [
        Self::Tasks,
        Self::Stalls,
        Self::Leaks,
        Self::Runtime,
        Self::Waiting,
        Self::Resources,
        Self::Timeline,
    ];

    /// The tab this screen belongs to (task and site details belong to Tasks).
    pub(crate) fn tab(self) -> usize {
        match self {
            Self::Tasks | Self::Task(_) | Self::Site(_) => 0,
            Self::Stalls => 1,
            Self::Leaks => 2,
            Self::Runtime => 3,
            Self::Waiting => 4,
            Self::Resources => 5,
            Self::Timeline => 6,
        }
    }
}

/// What is drawn over the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overlay {
    None,
    Help,
    /// The captured stack of a stall.
    Stack(u64),
}

/// The state of the link to a live probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Not connected (yet, or again); retrying.
    Waiting {
        reason: String,
        retry_in: Duration,
    },
    Live,
    /// The stream ended; the link reconnects on its own.
    Lost {
        reason: String,
    },
}

/// Where the model comes from.
#[derive(Debug)]
pub(crate) enum Source {
    Live(Link),
    Replay(Box<Player>),
}

/// What is computed from the model for drawing, refreshed at most every [`REFRESH`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Derived {
    pub(crate) rows: Vec<Row>,
    pub(crate) findings: Findings,
    pub(crate) counts: Counts,
    /// Stall ids: ongoing first (longest first), then ended ones, latest first.
    pub(crate) stalls: Vec<u64>,
    /// Live tasks by where they wait, most crowded first; only while the Waiting view is
    /// shown.
    pub(crate) waits: Vec<Group>,
    /// The Resources view's rows, trouble first.
    pub(crate) resources: Vec<resources::Row>,
}

/// The whole dashboard.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) model: Model,
    /// What the display shows while paused (`space`); `model` keeps taking updates.
    pub(crate) frozen: Option<Box<Model>>,
    pub(crate) source: Source,
    /// What is being watched, as the user named it.
    pub(crate) target: String,
    pub(crate) policy: Policy,
    pub(crate) screen: Screen,
    /// Where `Esc` returns to from task details.
    pub(crate) previous: Screen,
    pub(crate) overlay: Overlay,
    /// Stacks and await chains show every frame, not only the user's (`f`).
    pub(crate) all_frames: bool,
    /// A dump asked for (`d`) has not come back yet.
    pub(crate) taking_dump: bool,
    /// The filter is being typed.
    pub(crate) editing_filter: bool,
    pub(crate) query: Query,
    pub(crate) derived: Derived,
    /// The selected row (a task, or a site's tally), followed through re-sorts.
    pub(crate) selected: Option<Item>,
    pub(crate) tasks: Selection,
    pub(crate) stalls: Selection,
    pub(crate) leaks: Selection,
    pub(crate) runtime: Selection,
    pub(crate) waits: Selection,
    pub(crate) resources: Selection,
    pub(crate) detail_scroll: u16,
    /// The Timeline view's zoom and cursor.
    pub(crate) timeline: super::viewmodel::timeline::Position,
    /// A one-line message for the user (a restart seen, no stall to jump to).
    pub(crate) notice: Option<String>,
    pub(crate) theme: Theme,
    /// The terminal's size at the last draw: what mouse positions refer to.
    pub(crate) size: Rect,
    now: Instant,
    last_update_at: Option<Instant>,
    extrapolated_ns: u64,
    data_changed: bool,
    rows_changed: bool,
    refreshed_at: Option<Instant>,
}

impl App {
    pub(crate) fn new(source: Source, target: impl Into<String>, now: Instant) -> Self {
        let mut policy = Policy::default();
        // A dashboard watches a window of a service: growth is what it is for.
        policy.growth = true;
        Self {
            model: Model::new(),
            frozen: None,
            source,
            target: target.into(),
            policy,
            screen: Screen::Tasks,
            previous: Screen::Tasks,
            overlay: Overlay::None,
            all_frames: false,
            taking_dump: false,
            editing_filter: false,
            query: Query::default(),
            derived: Derived::default(),
            selected: None,
            tasks: Selection::default(),
            stalls: Selection::default(),
            leaks: Selection::default(),
            runtime: Selection::default(),
            waits: Selection::default(),
            resources: Selection::default(),
            detail_scroll: 0,
            timeline: Default::default(),
            notice: None,
            theme: Theme::from_env(),
            size: Rect::new(0, 0, 80, 24),
            now,
            last_update_at: None,
            extrapolated_ns: 0,
            data_changed: true,
            rows_changed: true,
            refreshed_at: None,
        }
    }

    /// A live dashboard, waiting for its first connection.
    pub(crate) fn live(target: impl Into<String>, now: Instant) -> Self {
        let target = target.into();
        let link = Link::Waiting {
            reason: String::new(),
            retry_in: Duration::ZERO,
        };
        Self::new(Source::Live(link), target, now)
    }

    /// A replay of a recording, positioned at its start.
    pub(crate) fn replay(mut player: Player, target: impl Into<String>, now: Instant) -> Self {
        let mut model = Model::new();
        player.catch_up(&mut model);
        let mut app = Self::new(Source::Replay(Box::new(player)), target, now);
        app.model = model;
        app
    }

    /// The model the display shows.
    pub(crate) fn shown(&self) -> &Model {
        self.frozen.as_deref().unwrap_or(&self.model)
    }

    /// Probe time the display is at: a live view runs on between updates (so an ongoing
    /// stall's duration keeps ticking), a replay is where its position is.
    pub(crate) fn now_ns(&self) -> u64 {
        match (&self.source, &self.frozen) {
            (_, Some(frozen)) => frozen.now_ns(),
            (Source::Replay(player), None) => player.position_ns().max(self.model.now_ns()),
            (Source::Live(_), None) => self.model.now_ns() + self.extrapolated_ns,
        }
    }

    /// Time passes: replay moves on, a live view extrapolates, derived data is refreshed
    /// when due.
    pub(crate) fn tick(&mut self, now: Instant) {
        let wall = now.saturating_duration_since(self.now);
        self.now = now;
        match &mut self.source {
            Source::Replay(player) => {
                if player.advance(wall, &mut self.model) {
                    self.data_changed = true;
                }
            }
            Source::Live(link) => {
                self.extrapolated_ns = match (link, self.last_update_at) {
                    // At most a second: past that the probe is silent for a reason.
                    (Link::Live, Some(at)) => now
                        .saturating_duration_since(at)
                        .min(Duration::from_secs(1))
                        .as_nanos() as u64,
                    _ => 0,
                };
            }
        }
        let due = self
            .refreshed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REFRESH);
        // A key that changes the rows rebuilds them from the model as it is now; when data
        // came since the last refresh, everything else is brought to that moment with them,
        // or the table would list what the header above it does not count yet.
        if self.data_changed && (due || self.rows_changed) {
            self.refresh();
            self.refreshed_at = Some(now);
        } else if self.rows_changed {
            self.refresh_rows();
        }
    }

    /// Recomputes everything derived from the shown model now.
    pub(crate) fn refresh(&mut self) {
        let model = self.shown();
        let findings = Findings::compute(model, &self.policy);
        let mut counts = Counts::default();
        for task in model.tasks() {
            counts.add(task);
        }
        counts.folded = model.folded_tasks();
        let now_ns = self.now_ns();
        // The stalls the judge counts: long enough for the policy (a probe may report from
        // a lower threshold), and never a spawn_blocking task's (blocking is its job).
        let threshold = self.policy.stall_threshold_ns;
        let mut stalls: Vec<_> = model
            .stalls()
            .filter(|s| s.duration_at(model.now_ns()) >= threshold)
            .filter(|s| {
                model
                    .task(s.task_id)
                    .is_none_or(|t| t.kind != Kind::Blocking)
            })
            .collect();
        stalls.sort_by_key(|s| {
            let ongoing = s.phase == Phase::Ongoing;
            (
                !ongoing,
                std::cmp::Reverse(if ongoing {
                    s.duration_at(now_ns)
                } else {
                    s.poll_started_ns
                }),
                s.stall_id,
            )
        });
        self.derived.stalls = stalls.iter().map(|s| s.stall_id).collect();
        self.derived.findings = findings;
        self.derived.counts = counts;
        self.data_changed = false;
        self.refresh_rows();
        self.stalls.clamp(self.derived.stalls.len());
        self.leaks.clamp(self.leak_rows());
        self.derived.resources = resources::rows(self.shown(), &self.policy, now_ns);
        self.resources.clamp(self.derived.resources.len());
        self.refresh_waits();
    }

    /// Regroups the live tasks by where they wait, when the Waiting view is shown: at 100k
    /// tasks grouping costs about what the rest of a refresh does, so other views skip it.
    pub(crate) fn refresh_waits(&mut self) {
        if self.screen != Screen::Waiting {
            self.derived.waits = Vec::new();
            return;
        }
        self.derived.waits = waits::groups(self.shown());
        self.waits.clamp(self.derived.waits.len());
    }

    /// Rebuilds the task table's rows, keeping the selected row selected.
    pub(crate) fn refresh_rows(&mut self) {
        let now_ns = self.now_ns();
        self.derived.rows = rows::build(self.shown(), &self.derived.findings, &self.query, now_ns);
        self.rows_changed = false;
        if let Some(item) = self.selected
            && let Some(index) = self.derived.rows.iter().position(|row| row.item == item)
        {
            self.tasks.index = index;
        }
        self.tasks.clamp(self.derived.rows.len());
        self.selected = self.derived.rows.get(self.tasks.index).map(|r| r.item);
    }

    /// Asks for the rows to be rebuilt at the next tick (sort, filter or tree changed).
    pub(crate) fn rows_changed(&mut self) {
        self.rows_changed = true;
    }

    /// Rows of the Leaks screen: lost wakers, tasks alive at shutdown, then spawn sites.
    pub(crate) fn leak_rows(&self) -> usize {
        let findings = &self.derived.findings;
        findings.lost_wakers.len() + findings.alive_at_shutdown.len() + self.shown_sites().len()
    }

    /// The spawn sites the Leaks screen lists: growing ones first, then the others with
    /// live tasks, most live first.
    pub(crate) fn shown_sites(&self) -> Vec<crate::model::LocationId> {
        let model = self.shown();
        let growing = &self.derived.findings.growing;
        let mut sites: Vec<_> = growing.iter().map(|g| g.site).collect();
        let mut others: Vec<_> = model
            .growth()
            .sites()
            .map(|(site, _)| site)
            .filter(|site| !sites.contains(site) && model.growth().live(*site) > 0)
            .collect();
        others.sort_by_key(|&site| (std::cmp::Reverse(model.growth().live(site)), site));
        sites.extend(others);
        sites
    }

    /// The live link's state; `None` for a replay.
    #[cfg(test)]
    pub(crate) fn source_link(&self) -> Option<&Link> {
        match &self.source {
            Source::Live(link) => Some(link),
            Source::Replay(_) => None,
        }
    }

    /// Takes in what the link reports.
    pub(crate) fn on_link(&mut self, event: LinkEvent) {
        let Source::Live(link) = &mut self.source else {
            return;
        };
        match event {
            LinkEvent::Waiting { reason, retry_in } => *link = Link::Waiting { reason, retry_in },
            LinkEvent::Connected => *link = Link::Live,
            LinkEvent::Lost { reason } => *link = Link::Lost { reason },
            LinkEvent::Update(update) => {
                *link = Link::Live;
                self.apply(&update);
            }
            LinkEvent::Dumped(answer) => self.on_dump(answer),
        }
    }

    /// Folds one live update in. A different pid is a different run: start a fresh view
    /// rather than mix two processes' tasks.
    pub(crate) fn apply(&mut self, update: &taskscope_api::v1::Update) {
        if let Some(process) = &update.process {
            let old = self.model.pid();
            if old != 0 && process.pid != old {
                self.model = Model::new();
                self.frozen = None;
                self.selected = None;
                self.tasks = Selection::default();
                self.stalls = Selection::default();
                self.leaks = Selection::default();
                self.waits = Selection::default();
                self.resources = Selection::default();
                self.query.awaiting = None;
                self.rows_changed();
                if let Screen::Task(_) | Screen::Site(_) = self.screen {
                    self.screen = Screen::Tasks;
                }
                if let Overlay::Stack(_) = self.overlay {
                    self.overlay = Overlay::None;
                }
                self.notice = Some(format!(
                    "the target restarted (pid {old} → {}): showing the new run",
                    process.pid
                ));
            }
        }
        self.model.apply(update);
        self.last_update_at = Some(self.now);
        self.data_changed = true;
    }

    /// Pauses or resumes the display (live) or playback (replay).
    pub(crate) fn toggle_pause(&mut self) {
        match &mut self.source {
            Source::Replay(player) => player.toggle(&mut self.model),
            Source::Live(_) => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(Box::new(self.model.clone())),
                };
            }
        }
        self.data_changed = true;
        self.refreshed_at = None;
    }

    /// Runs `f` on the replay player, if this is a replay; the data changed if it did.
    pub(crate) fn with_player(&mut self, f: impl FnOnce(&mut Player, &mut Model) -> bool) -> bool {
        let Source::Replay(player) = &mut self.source else {
            return false;
        };
        let done = f(player, &mut self.model);
        self.data_changed = true;
        self.refreshed_at = None;
        done
    }
}
