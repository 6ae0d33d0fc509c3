//! Numeric CSV time series: reading, column choice, scaling and windowing.
//!
//! - [`read_csv`] reads a file of numbers, one time step per line, with an
//!   optional header (detected when any cell of the first non-blank line is
//!   not a number, or set by [`CsvOptions::header`]). Fields may be wrapped in
//!   double quotes (`""` inside quotes is one quote); blank lines are skipped.
//!   A row with a different number of fields, or a cell that is not a finite
//!   number (NaN and inf included: a series has no missing values here), is
//!   an error naming the file, the line (1-based) and the column (1-based,
//!   with its name). [`read_csv_skipping`] leaves out columns such as dates.
//! - [`CsvTable::select`] picks feature columns by name or index, giving a
//!   `[T, F]` tensor; [`CsvTable::column`] one column.
//! - [`Scaler`] (min-max or standard) is fitted on the training rows, applied
//!   to inputs and targets, and saved beside the model (JSON, serde) so that
//!   predictions can be turned back into original units with
//!   [`Scaler::inverse_transform_column`].
//! - [`window`] cuts `(lookback, horizon)` samples.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::io::atomic::write_atomic;
use crate::{Error, Result, Tensor};

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The field separator (default `,`).
    pub delimiter: char,
    /// `Some(true)`: the first non-blank line is a header; `Some(false)`: it
    /// is data; `None` (default): a header when any of its cells is not a
    /// number.
    pub header: Option<bool>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            header: None,
        }
    }
}

/// A column chosen by header name or by 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Column {
    /// The column with this header name.
    Name(String),
    /// The column at this 0-based position.
    Index(usize),
}

impl From<&str> for Column {
    fn from(s: &str) -> Self {
        Column::Name(s.to_string())
    }
}

impl From<usize> for Column {
    fn from(i: usize) -> Self {
        Column::Index(i)
    }
}

/// A numeric table read from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    path: PathBuf,
    names: Vec<String>,
    has_header: bool,
    rows: usize,
    data: Vec<f32>,
}

/// Splits one line into fields, honouring double quotes; `line_no` is for errors.
fn split_fields(line: &str, delim: char, path: &Path, line_no: usize) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.trim().is_empty() {
            cur.clear();
            in_quotes = true;
        } else if c == delim {
            fields.push(std::mem::take(&mut cur).trim().to_string());
        } else {
            cur.push(c);
        }
    }
    if in_quotes {
        return Err(Error::file(
            path,
            format!("line {line_no}: unterminated quoted field"),
        ));
    }
    fields.push(cur.trim().to_string());
    Ok(fields)
}

/// Reads a numeric CSV file (see the [module docs](self)).
pub fn read_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<CsvTable> {
    read_csv_skipping(path, opts, &[])
}

/// [`read_csv`] leaving out the `skip` columns (by header name or 0-based
/// index), which may then hold anything (dates, text). Errors keep the file's
/// own line and column numbers.
pub fn read_csv_skipping(
    path: impl AsRef<Path>,
    opts: &CsvOptions,
    skip: &[Column],
) -> Result<CsvTable> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Error::file(
            path,
            format!("not valid UTF-8 at byte offset {}", e.valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first)) = lines.next() else {
        return Err(Error::file(path, "no data: the file is empty"));
    };
    let first_fields = split_fields(first, opts.delimiter, path, first_no)?;
    let has_header = opts
        .header
        .unwrap_or_else(|| first_fields.iter().any(|f| f.parse::<f64>().is_err()));
    let cols = first_fields.len();
    let all_names: Vec<String> = if has_header {
        first_fields.clone()
    } else {
        (0..cols).map(|i| i.to_string()).collect()
    };
    let keep = kept_columns(&all_names, has_header, skip, path)?;
    let names: Vec<String> = keep.iter().map(|&c| all_names[c].clone()).collect();
    let mut data = Vec::new();
    let mut rows = 0;
    let data_lines = (!has_header)
        .then_some((first_no, first))
        .into_iter()
        .chain(lines);
    for (line_no, line) in data_lines {
        let fields = split_fields(line, opts.delimiter, path, line_no)?;
        if fields.len() != cols {
            return Err(Error::file(
                path,
                format!(
                    "line {line_no}: {} fields, expected {cols} (as on line {first_no})",
                    fields.len()
                ),
            ));
        }
        for &c in &keep {
            let f = &fields[c];
            let at = || format!("line {line_no}, column {} ('{}')", c + 1, all_names[c]);
            let v: f32 = f
                .parse()
                .map_err(|_| Error::file(path, format!("{}: '{f}' is not a number", at())))?;
            // NaN and inf (or a number beyond f32, 1e39) would poison the
            // scaling and every window after them; say where they are.
            if !v.is_finite() {
                return Err(Error::file(
                    path,
                    format!("{}: '{f}' is not a finite number", at()),
                ));
            }
            data.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::file(path, "no data rows after the header"));
    }
    Ok(CsvTable {
        path: path.to_path_buf(),
        names,
        has_header,
        rows,
        data,
    })
}

/// The 0-based positions of the columns not named in `skip`, in order.
fn kept_columns(
    names: &[String],
    has_header: bool,
    skip: &[Column],
    path: &Path,
) -> Result<Vec<usize>> {
    let mut drop = Vec::with_capacity(skip.len());
    for col in skip {
        let pos = match col {
            Column::Index(i) => (*i < names.len()).then_some(*i),
            Column::Name(n) if has_header => names.iter().position(|h| h == n),
            Column::Name(_) => None,
        };
        drop.push(pos.ok_or_else(|| {
            let shown = match col {
                Column::Index(i) => i.to_string(),
                Column::Name(n) => n.clone(),
            };
            Error::file(
                path,
                format!(
                    "skip={shown}: no such column (columns: {})",
                    names.join(", ")
                ),
            )
        })?);
    }
    Ok((0..names.len()).filter(|c| !drop.contains(c)).collect())
}

impl CsvTable {
    /// Number of data rows (time steps).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.names.len()
    }

    /// Column names: the header, or `"0"`, `"1"`, ... without one.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the first line was read as a header.
    pub fn has_header(&self) -> bool {
        self.has_header
    }

    /// The 0-based position of a column; errors name the file and the
    /// columns there are.
    pub fn column_index(&self, col: &Column) -> Result<usize> {
        match col {
            Column::Index(i) if *i < self.cols() => Ok(*i),
            Column::Name(n) => self.names.iter().position(|x| x == n).ok_or_else(|| {
                Error::file(
                    &self.path,
                    format!("no column named '{n}' (columns: {})", self.names.join(", ")),
                )
            }),
            Column::Index(i) => Err(Error::file(
                &self.path,
                format!("no column {i}: the file has {} (0-based)", self.cols()),
            )),
        }
    }

    /// One column's values, `T` long.
    pub fn column(&self, col: &Column) -> Result<Vec<f32>> {
        let c = self.column_index(col)?;
        Ok(self
            .data
            .iter()
            .skip(c)
            .step_by(self.cols())
            .copied()
            .collect())
    }

    /// The chosen columns, in the order given, as `[T, F]`.
    pub fn select(&self, cols: &[Column]) -> Result<Tensor> {
        let idx = cols
            .iter()
            .map(|c| self.column_index(c))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(self.rows * idx.len());
        for row in self.data.chunks_exact(self.cols()) {
            out.extend(idx.iter().map(|&c| row[c]));
        }
        Tensor::from_vec(&[self.rows, idx.len()], out)
    }

    /// Names of the chosen columns.
    pub fn column_names(&self, cols: &[Column]) -> Result<Vec<String>> {
        cols.iter()
            .map(|c| Ok(self.names[self.column_index(c)?].clone()))
            .collect()
    }
}

/// Cuts a series into supervised samples.
///
/// `features` is `[T, F]` and `target` has `T` values (usually one of the
/// columns, scaled the same way). Sample `i` (for `i` in `0..N`, `N = T -
/// lookback - horizon + 1`) is
///
/// - input `x[i] = features[i .. i + lookback]` (`[lookback, F]`), and
/// - target `y[i] = target[i + lookback .. i + lookback + horizon]`: the
///   `horizon` values that follow the window, the first being the step right
///   after its last row.
///
/// Returns `([N, lookback, F], [N, horizon])`. Errors when `lookback` or
/// `horizon` is 0 or the series is shorter than `lookback + horizon`.
pub fn window(
    features: &Tensor,
    target: &[f32],
    lookback: usize,
    horizon: usize,
) -> Result<(Tensor, Tensor)> {
    features.expect_rank(2, "window features")?;
    let (t, f) = (features.shape()[0], features.shape()[1]);
    if target.len() != t {
        return Err(Error::shape("window target", [t], [target.len()]));
    }
    if lookback == 0 || horizon == 0 {
        return Err(Error::invalid(
            "lookback/horizon",
            format!("both must be at least 1 (lookback {lookback}, horizon {horizon})"),
        ));
    }
    let need = lookback.saturating_add(horizon);
    if t < need {
        return Err(Error::invalid(
            "lookback/horizon",
            format!("the series has {t} steps, fewer than lookback {lookback} + horizon {horizon}"),
        ));
    }
    let n = t - need + 1;
    let fd = features.data();
    let mut x = Vec::with_capacity(n * lookback * f);
    let mut y = Vec::with_capacity(n * horizon);
    for i in 0..n {
        x.extend_from_slice(&fd[i * f..(i + lookback) * f]);
        y.extend_from_slice(&target[i + lookback..i + lookback + horizon]);
    }
    Ok((
        Tensor::from_vec(&[n, lookback, f], x)?,
        Tensor::from_vec(&[n, horizon], y)?,
    ))
}

/// The kind of per-column scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleKind {
    /// `(x - min) / (max - min)`, into [0, 1] on the fitted rows.
    MinMax,
    /// `(x - mean) / std`, the population standard deviation (ddof 0).
    Standard,
}

/// A fitted per-column scaler: `scaled = (x - offset) / scale`. A constant
/// column gets scale 1 (as scikit-learn does). Serialisable, to be stored in
/// the model directory ([`Scaler::save`]) so predictions come back in the
/// original units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Min-max or standard.
    pub kind: ScaleKind,
    /// Column names, for the record (may be empty).
    pub columns: Vec<String>,
    /// Subtracted first: the minimum or the mean, per column.
    pub offset: Vec<f32>,
    /// Divided by next: the range or the standard deviation, per column.
    pub scale: Vec<f32>,
}

impl Scaler {
    /// Fits on the first `rows` rows of `data` (`[T, F]`; `None`: all rows),
    /// normally the training part of the series. `columns` names the `F`
    /// columns (or is empty).
    pub fn fit(
        kind: ScaleKind,
        data: &Tensor,
        rows: Option<usize>,
        columns: Vec<String>,
    ) -> Result<Scaler> {
        data.expect_rank(2, "Scaler::fit")?;
        let (t, f) = (data.shape()[0], data.shape()[1]);
        let rows = rows.unwrap_or(t);
        if rows == 0 || rows > t {
            return Err(Error::invalid(
                "rows",
                format!("cannot fit on {rows} rows of a {t}-row series"),
            ));
        }
        if !columns.is_empty() && columns.len() != f {
            return Err(Error::shape("Scaler::fit column names", f, columns.len()));
        }
        let d = &data.data()[..rows * f];
        let mut offset = Vec::with_capacity(f);
        let mut scale = Vec::with_capacity(f);
        for c in 0..f {
            let col = d.iter().skip(c).step_by(f).map(|&v| v as f64);
            let (o, s) = match kind {
                ScaleKind::MinMax => {
                    let (lo, hi) = col.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(v), hi.max(v))
                    });
                    (lo, hi - lo)
                }
                ScaleKind::Standard => {
                    let mean = col.clone().sum::<f64>() / rows as f64;
                    let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / rows as f64;
                    (mean, var.sqrt())
                }
            };
            if !o.is_finite() || !s.is_finite() {
                return Err(Error::invalid(
                    "scaler data",
                    format!("column {c} has non-finite values"),
                ));
            }
            offset.push(o as f32);
            scale.push(if s == 0.0 { 1.0 } else { s as f32 });
        }
        Ok(Scaler {
            kind,
            columns,
            offset,
            scale,
        })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    /// Whether the scaler has no columns.
    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }

    fn check(&self, x: &Tensor, context: &str) -> Result<()> {
        if self.offset.len() != self.scale.len() {
            return Err(Error::invalid(
                "scaler",
                "offset and scale have different lengths",
            ));
        }
        if x.shape().last() != Some(&self.len()) {
            return Err(Error::shape(
                context,
                format!("[..., {}]", self.len()),
                x.shape(),
            ));
        }
        Ok(())
    }

    /// Scales a tensor whose last dimension is the fitted columns.
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x, "Scaler::transform")?;
        let mut out = x.clone();
        for row in out.data_mut().chunks_exact_mut(self.len().max(1)) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = (*v - o) / s;
            }
        }
        Ok(out)
    }

    /// Undoes [`Scaler::transform`].
    pub fn inverse_transform(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x, "Scaler::inverse_transform")?;
        let mut out = x.clone();
        for row in out.data_mut().chunks_exact_mut(self.len().max(1)) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = *v * s + o;
            }
        }
        Ok(out)
    }

    /// Scales every element of `x` (any shape) with column `col`'s
    /// parameters, e.g. a target series.
    pub fn transform_column(&self, col: usize, x: &Tensor) -> Result<Tensor> {
        let (o, s) = self.params(col)?;
        let mut out = x.clone();
        out.data_mut().iter_mut().for_each(|v| *v = (*v - o) / s);
        Ok(out)
    }

    /// Undoes [`Scaler::transform_column`]: predictions `[N, horizon]` of
    /// column `col` back in original units.
    pub fn inverse_transform_column(&self, col: usize, x: &Tensor) -> Result<Tensor> {
        let (o, s) = self.params(col)?;
        let mut out = x.clone();
        out.data_mut().iter_mut().for_each(|v| *v = *v * s + o);
        Ok(out)
    }

    fn params(&self, col: usize) -> Result<(f32, f32)> {
        match (self.offset.get(col), self.scale.get(col)) {
            (Some(&o), Some(&s)) => Ok((o, s)),
            _ => Err(Error::invalid(
                "column",
                format!("{col} is not below the scaler's {} columns", self.len()),
            )),
        }
    }

    /// Writes the scaler as JSON, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid("scaler", e.to_string()))?;
        write_atomic(path, json.as_bytes())
    }

    /// Reads a scaler written by [`Scaler::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Scaler> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let s: Scaler = serde_json::from_str(&text).map_err(|e| {
            Error::file(
                path,
                format!(
                    "not a scaler: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if s.offset.len() != s.scale.len() || s.scale.iter().any(|&v| v == 0.0 || !v.is_finite()) {
            return Err(Error::file(
                path,
                "offset and scale must have equal lengths and finite, non-zero scales",
            ));
        }
        Ok(s)
    }
}
