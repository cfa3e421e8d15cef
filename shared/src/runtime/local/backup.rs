//! `m2m-admin export` and `import`: the JSON-lines file of [`crate::operations::Backup`].

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::fail;
use crate::adapters::{Exported, RECORD_FORMAT};
use crate::app::App;
use crate::domain::federation::LocalIssuers;
use crate::operations::{EXPORT_FORMAT, EXPORT_VERSION, Pass, check_exported};

/// The export's first line.
fn header() -> Value {
    use crate::ports::Clock;
    json!({
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "recordFormat": RECORD_FORMAT,
        "exportedAt": crate::adapters::SystemClock.now().iso8601(),
    })
}

/// Writes every record to stdout, page by page.
pub(super) async fn export(app: App) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Err(e) = write_line(&mut out, &header()) {
        return fail(format_args!("cannot write: {e}"));
    }
    let (mut written, mut cursor) = (0_u64, None);
    loop {
        let (page, next) = match app.backup().export_page(cursor).await {
            Ok(page) => page,
            Err(e) => return fail(format_args!("export failed after {written} records: {e:?}")),
        };
        for record in &page {
            if let Err(e) = write_line(&mut out, record) {
                return fail(format_args!("cannot write: {e}"));
            }
            written += 1;
        }
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    if let Err(e) = out.flush() {
        return fail(format_args!("cannot write: {e}"));
    }
    eprintln!("exported {written} records");
    ExitCode::SUCCESS
}

/// `value` as one line of JSON.
fn write_line(out: &mut impl Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// The longest line an import reads: far beyond any record the service writes.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Every line of the export in `file`, read and checked: the first problem, if any, as
/// `file:line: why`.
fn check_all(file: &PathBuf, local: &LocalIssuers) -> Result<u64, String> {
    let mut records = 0;
    for (number, line) in read_export(file).map_err(|e| format!("{}: {e}", file.display()))? {
        let at = |why: String| format!("{}:{number}: {why}", file.display());
        let line = line.map_err(at)?;
        if line.len() > MAX_LINE_BYTES {
            return Err(at(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let record: Exported =
            serde_json::from_str(&line).map_err(|e| at(format!("not a record: {e}")))?;
        check_exported(&record, local).map_err(|e| at(e.to_string()))?;
        records += 1;
    }
    Ok(records)
}

/// Loads the export in `file`: every line checked first (nothing is written if one is bad),
/// then in [`Pass`]es.
pub(super) async fn import(app: App, file: PathBuf) -> ExitCode {
    if let Err(why) = check_all(&file, &app.settings().local_issuers) {
        return fail(format_args!("{why}\nnothing was imported"));
    }
    let (mut written, mut kept) = (0_u64, 0_u64);
    for pass in Pass::ALL {
        let lines = match read_export(&file) {
            Ok(lines) => lines,
            Err(e) => return fail(format_args!("{}: {e}", file.display())),
        };
        for (number, line) in lines {
            let record: Exported = match line
                .and_then(|l| serde_json::from_str(&l).map_err(|e| format!("not a record: {e}")))
            {
                Ok(record) => record,
                Err(e) => return fail(format_args!("{}:{number}: {e}", file.display())),
            };
            if !pass.takes(&record) {
                continue;
            }
            match app.backup().import(record).await {
                Ok(true) => written += 1,
                Ok(false) => kept += 1,
                Err(e) => {
                    return fail(format_args!(
                        "{}:{number}: {e:?}\nthe records before it are in; run the import \
                         again to finish it",
                        file.display()
                    ));
                }
            }
        }
    }
    println!("imported {written} records; {kept} were there already");
    ExitCode::SUCCESS
}

/// The record lines of an export (numbered from 2), after its header is checked.
fn read_export(
    file: &PathBuf,
) -> Result<impl Iterator<Item = (usize, Result<String, String>)>, String> {
    let opened = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut lines = std::io::BufReader::new(opened).lines();
    let first = lines
        .next()
        .ok_or("empty: not an export")?
        .map_err(|e| e.to_string())?;
    let header: Value = serde_json::from_str(&first).map_err(|_| "not an export".to_owned())?;
    if header["format"] != EXPORT_FORMAT {
        return Err("not an export of m2m-auth".into());
    }
    let version = header["version"].as_u64().unwrap_or(u64::MAX);
    let format = header["recordFormat"].as_u64().unwrap_or(u64::MAX);
    if version > EXPORT_VERSION || format > RECORD_FORMAT {
        return Err(format!(
            "written by a later release (export {version}, records {format}; this one reads up \
             to {EXPORT_VERSION} and {RECORD_FORMAT}): import it with that release or a later one"
        ));
    }
    Ok(lines
        .enumerate()
        .map(|(i, line)| (i + 2, line.map_err(|e| e.to_string())))
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty())))
}
