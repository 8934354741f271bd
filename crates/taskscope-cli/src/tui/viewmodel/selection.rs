//! Where the user is in a list: the selected row, and the first row on screen.

use std::cell::Cell;

/// A selectable list's position. The scroll offset is adjusted while drawing (the only
/// place the visible height is known), hence the `Cell`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    pub(crate) index: usize,
    pub(crate) offset: Cell<usize>,
}

impl Selection {
    pub(crate) fn clamp(&mut self, len: usize) {
        self.index = self.index.min(len.saturating_sub(1));
    }

    /// Moves by `delta` rows within `len`.
    pub(crate) fn step(&mut self, delta: isize, len: usize) {
        self.index = self.index.saturating_add_signed(delta);
        self.clamp(len);
    }

    /// The first row to draw so that the selected row is visible in `height` rows.
    pub(crate) fn visible_from(&self, height: usize, len: usize) -> usize {
        let mut offset = self.offset.get().min(len.saturating_sub(height));
        if self.index < offset {
            offset = self.index;
        } else if height > 0 && self.index >= offset + height {
            offset = self.index + 1 - height;
        }
        self.offset.set(offset);
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selected_row_stays_on_screen() {
        let mut selection = Selection::default();
        selection.step(30, 100);
        assert_eq!(selection.visible_from(10, 100), 21);
        selection.step(-25, 100);
        assert_eq!(selection.visible_from(10, 100), 5);
        selection.step(isize::MAX, 100);
        assert_eq!(selection.index, 99);
        assert_eq!(selection.visible_from(10, 100), 90);
        selection.clamp(3);
        assert_eq!((selection.index, selection.visible_from(10, 3)), (2, 0));
        selection.step(isize::MIN, 0);
        assert_eq!(selection.index, 0);
    }
}
