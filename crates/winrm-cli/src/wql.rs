//! `winrm wql`: a WQL query as a stream of rows, printed as they arrive (a table, or JSON
//! lines with `--json`), with a progress count on a terminal and Ctrl-C as a cancel that
//! releases the enumeration on the server (exit 130); a reader of stdout that goes away
//! (`| head -1`) cancels it the same way (exit 141).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_winrm::{
    CancelReason, Client, DEFAULT_MAX_ELEMENTS, EnumEnd, EnumEvent, EnumItem, EnumerateBuilder,
    Instance,
};

use crate::Failure;
use crate::render::{instance_json_line, scalar_text};
use crate::stream::{CLEANUP_GRACE, begin_cleanup, cleanup_left};

/// Rows collected before the table's column widths are fixed.
const WIDTH_SAMPLE_ROWS: usize = 100;
/// ... or this long after the first row, whichever comes first.
const WIDTH_SAMPLE_TIME: Duration = Duration::from_millis(250);
/// The widest a column is; longer values are cut with `…` (the last column is printed in
/// full: nothing follows it).
const MAX_WIDTH: usize = 60;

/// Runs the query and prints its rows.
pub async fn run(
    client: &Client,
    query: &str,
    namespace: &str,
    max: Option<u64>,
    json: bool,
) -> Result<ExitCode, Failure> {
    stream_rows(
        client.wql(namespace, query),
        selected_properties(query),
        max,
        json,
    )
    .await
}

/// Runs an enumeration (a WQL query or `winrm enumerate`'s plain one) and prints its rows
/// under `columns` (`None`: the first row's properties).
pub async fn stream_rows(
    mut builder: EnumerateBuilder<EnumItem>,
    columns: Option<Vec<String>>,
    max: Option<u64>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let mut interrupts = crate::stream::watch_ctrl_c();
    if let Some(n) = max {
        builder = builder.max_elements(
            u32::try_from(n)
                .unwrap_or(u32::MAX)
                .clamp(1, DEFAULT_MAX_ELEMENTS),
        );
    }
    let mut rows = builder.start();
    let cancel = rows.cancel_handle();
    let mut out = Rows::new(columns, json);
    let mut limited = false;
    let end = loop {
        let tick = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            ev = rows.next() => match ev {
                Some(Ok(EnumEvent::Item(item))) => {
                    // Rows of a page already received after --max was reached are
                    // dropped (a server may send more than MaxElements asked for).
                    let room = max.is_none_or(|m| out.count < m);
                    if let Some(inst) = item.instance().filter(|_| room) {
                        out.push(inst);
                    }
                    if max.is_some_and(|m| out.count >= m) && !cancel.is_cancelled() {
                        limited = true;
                        cancel.cancel();
                    }
                }
                Some(Ok(EnumEvent::End(end))) => break Ok(end),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => break Err(tokio_winrm::Error::State("the enumeration ended without a final status".into())),
            },
            Some(()) = interrupts.recv() => {
                if cancel.is_cancelled() {
                    out.finish();
                    eprintln!("interrupted again: exiting without waiting for the server");
                    std::process::exit(crate::stream::interrupted_code().into());
                }
                out.clear_progress();
                eprintln!("{}: cancelling the enumeration (Release); press Ctrl-C again to quit at once", crate::stream::interrupt_name());
                cancel.cancel();
            }
            () = tick => out.tick(),
        }
        // stdout's reader went away (`| head`): nothing more can be shown, so the
        // enumeration is cancelled and its Release sent, as on Ctrl-C (exit 141).
        if crate::out::closed() && !cancel.is_cancelled() {
            cancel.cancel();
        }
    };
    out.finish();
    // After a cancel the server may be what stalled (an Enumerate it never answered):
    // the Release gets the short cleanup grace, not a whole HTTP timeout.
    let released = if cancel.is_cancelled() {
        begin_cleanup();
        tokio::select! {
            r = tokio::time::timeout(cleanup_left(), rows.close()) => r.ok(),
            Some(()) = interrupts.recv() => {
                eprintln!("interrupted again: exiting without waiting for the server");
                std::process::exit(crate::stream::interrupted_code().into());
            }
        }
    } else {
        Some(rows.close().await)
    };
    let end = end?;
    if let Some(Err(e)) = &released {
        eprintln!("warning: releasing the enumeration failed: {e}");
    }
    let n = out.count;
    // What became of the server's enumeration context, for the messages: with no row
    // received the tool cannot tell whether the server had opened one.
    let release = match (&released, n) {
        (Some(Ok(())), 0) => {
            "the enumeration context, if the server had opened one, was released".to_string()
        }
        (Some(Ok(())), _) => "Release was sent for the enumeration".to_string(),
        (Some(Err(_)), _) => "its Release failed".to_string(),
        (None, _) => format!(
            "the server did not answer within {} s, so its enumeration context (if it \
             opened one) was not released: the server drops it when it expires",
            CLEANUP_GRACE.as_secs()
        ),
    };
    Ok(match end {
        EnumEnd::Complete => {
            if std::io::stderr().is_terminal() {
                eprintln!("({n} rows)");
            }
            ExitCode::SUCCESS
        }
        EnumEnd::Cancelled { .. } if limited => {
            eprintln!("(stopped after {n} rows as --max asked; {release})");
            ExitCode::SUCCESS
        }
        // Stopped because stdout's reader went away: 141, as a closed pipe ends `run`.
        EnumEnd::Cancelled { .. } if crate::out::closed() => {
            crate::out::exit_code().unwrap_or(ExitCode::from(1))
        }
        EnumEnd::Cancelled { reason } => {
            let why = if reason == CancelReason::User {
                "interrupted".to_string()
            } else {
                reason.to_string()
            };
            eprintln!("cancelled ({why}) after {n} rows; {release}");
            ExitCode::from(crate::stream::interrupted_code())
        }
        other => {
            eprintln!("the enumeration ended: {other:?}");
            ExitCode::SUCCESS
        }
    })
}

/// The property list of `SELECT a, b FROM ...`; `None` for `SELECT *` or when the query
/// cannot be read (the server will say what is wrong with it).
fn selected_properties(query: &str) -> Option<Vec<String>> {
    let q = query.trim();
    let lower = q.to_ascii_lowercase();
    let rest = lower.strip_prefix("select")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let from = lower.split_whitespace().position(|w| w == "from")?;
    let list: Vec<&str> = q.split_whitespace().skip(1).take(from - 1).collect();
    let props: Vec<String> = list
        .join(" ")
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    (!props.is_empty() && !props.iter().any(|p| p == "*")).then_some(props)
}

/// Prints rows: JSON lines at once; a table after a short sample fixes column widths.
struct Rows {
    columns: Option<Vec<String>>,
    widths: Option<Vec<usize>>,
    pending: Vec<Vec<String>>,
    first_at: Option<Instant>,
    json: bool,
    count: u64,
    progress: bool,
    progress_shown: bool,
}

impl Rows {
    fn new(columns: Option<Vec<String>>, json: bool) -> Rows {
        Rows {
            columns,
            widths: None,
            pending: Vec::new(),
            first_at: None,
            json,
            count: 0,
            progress: std::io::stderr().is_terminal(),
            progress_shown: false,
        }
    }

    fn push(&mut self, inst: &Instance) {
        self.count += 1;
        if self.json {
            self.emit(&instance_json_line(inst));
            return;
        }
        let columns = self
            .columns
            .get_or_insert_with(|| inst.properties.iter().map(|(k, _)| k.clone()).collect());
        let cells = columns
            .iter()
            .map(|c| inst.get(c).map_or_else(String::new, scalar_text))
            .collect();
        self.first_at.get_or_insert_with(Instant::now);
        self.pending.push(cells);
        if self.widths.is_some() || self.pending.len() >= WIDTH_SAMPLE_ROWS {
            self.flush_table();
        }
    }

    /// Called every 100 ms: ends the width sample, redraws the progress count.
    fn tick(&mut self) {
        if self
            .first_at
            .is_some_and(|t| t.elapsed() >= WIDTH_SAMPLE_TIME)
        {
            self.flush_table();
        }
        if self.progress && self.count > 0 {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K{} rows...", self.count);
            let _ = e.flush();
            self.progress_shown = true;
        }
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            self.progress_shown = false;
        }
    }

    fn emit(&mut self, line: &str) {
        self.clear_progress();
        // A failed write (the reader went away, e.g. `| head`) is remembered by `out`;
        // the caller then cancels the enumeration so that its Release goes out.
        crate::out::outln!("{line}");
        crate::out::flush();
    }

    fn flush_table(&mut self) {
        if self.json {
            return;
        }
        let Some(columns) = self.columns.clone() else {
            return;
        };
        if self.widths.is_none() {
            if self.pending.is_empty() {
                // No row yet: no header either (an error may follow, or nothing at all).
                return;
            }
            let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
            for row in &self.pending {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count()).min(MAX_WIDTH);
                }
            }
            let header = format_row(&columns, &widths);
            let rule = format_row(
                &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
                &widths,
            );
            self.widths = Some(widths);
            self.emit(&header);
            self.emit(&rule);
        }
        let widths = self.widths.clone().unwrap_or_default();
        for row in std::mem::take(&mut self.pending) {
            self.emit(&format_row(&row, &widths));
        }
    }

    fn finish(&mut self) {
        self.flush_table();
        self.clear_progress();
    }
}

/// One table line: cells padded to their column's width, a cell wider than its column
/// cut with `…`; line breaks and other control characters shown as spaces so that a row
/// stays one line.
fn format_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let cell: String = cell
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let last = i + 1 == cells.len();
        let len = cell.chars().count();
        if last {
            line.push_str(&cell);
        } else if len > *w {
            line.extend(cell.chars().take(w.saturating_sub(1)));
            line.push('…');
        } else {
            line.push_str(&cell);
            line.extend(std::iter::repeat_n(' ', w - len));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_cells_are_cut_and_columns_stay_aligned() {
        let widths = [5, 3, 4];
        let a = format_row(
            &["abcdefgh".into(), "x".into(), "tail is long".into()],
            &widths,
        );
        let b = format_row(&["ab".into(), "line\nbreak".into(), "t".into()], &widths);
        assert_eq!(a, "abcd…  x    tail is long");
        assert_eq!(b, "ab     li…  t");
        // The third column starts at the same character in both rows.
        assert_eq!(a.chars().nth(12), Some('t'));
        assert_eq!(b.chars().nth(12), Some('t'));
    }

    #[test]
    fn no_header_without_rows() {
        let mut rows = Rows::new(Some(vec!["Name".into()]), false);
        rows.finish();
        assert!(rows.widths.is_none(), "a header was printed with no row");
    }

    #[test]
    fn selected_properties_of_a_query() {
        assert_eq!(
            selected_properties("SELECT Name, State FROM Win32_Service"),
            Some(vec!["Name".to_string(), "State".to_string()])
        );
        assert_eq!(selected_properties("select * from Win32_Service"), None);
    }
}
