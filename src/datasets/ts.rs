//! UCR/UEA time-series classification files in the sktime/aeon `.ts` text
//! format.
//!
//! A header of `@` tags (case-insensitive) — `@problemName`, `@timeStamps`,
//! `@missing`, `@univariate`, `@dimensions`, `@equalLength`,
//! `@seriesLength`, `@classLabel true <labels...>` (or `false`) — then
//! `@data` and one case per line: the dimensions separated by `:`, the values
//! of a dimension by `,`, and the class label last. Lines starting with `#`
//! or `%` are comments.
//! `?` (or `NaN`, as some UEA files pad variable-length series) is a missing
//! value and is read as NaN; an infinite value (`inf`, or a number beyond
//! f32 such as `1e39`) is an error naming the line, dimension and value.
//! Time-stamped data
//! (`@timeStamps true`) and regression targets (`@targetLabel`) are not
//! supported and give an error.
//!
//! Series of different lengths are padded at the end with 0 to the longest,
//! giving `x` `[N, T_max, dims]` and a `mask` `[N, T_max]` that is 1 on real
//! steps and 0 on padding. Within one case all dimensions must have the same
//! length. Labels become indices in the order declared by `@classLabel`.

use std::fs;
use std::path::Path;

use crate::{Error, Result, Tensor};

/// Padded arrays up to this many values are always allowed; above it, only
/// when padding at most multiplies the data by 16.
const MAX_PADDED: usize = 1 << 24;

/// A `.ts` data set.
#[derive(Debug, Clone, PartialEq)]
pub struct TsDataset {
    /// `@problemName`, when given.
    pub problem_name: Option<String>,
    /// The class labels in declared order; label `i` of [`TsDataset::labels`]
    /// is `class_labels[i]`. Empty for `@classLabel false`.
    pub class_labels: Vec<String>,
    /// Series, `[N, T_max, dims]`, padded at the end with 0.
    pub x: Tensor,
    /// `[N, T_max]`: 1 on real steps, 0 on padding.
    pub mask: Tensor,
    /// The length of each series.
    pub lengths: Vec<usize>,
    /// Class indices, one per case (empty for `@classLabel false`).
    pub labels: Vec<i64>,
}

fn parse_bool(v: Option<&str>, tag: &str, path: &Path, line: usize) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        other => Err(Error::file(
            path,
            format!(
                "line {line}: {tag} must be followed by true or false, found {}",
                other.unwrap_or("nothing")
            ),
        )),
    }
}

fn parse_count(v: Option<&str>, tag: &str, path: &Path, line: usize) -> Result<usize> {
    v.and_then(|s| s.parse::<usize>().ok()).ok_or_else(|| {
        Error::file(
            path,
            format!(
                "line {line}: {tag} must be followed by a whole number, found {}",
                v.unwrap_or("nothing")
            ),
        )
    })
}

struct Header {
    problem_name: Option<String>,
    dims: Option<usize>,
    series_length: Option<usize>,
    equal_length: bool,
    class_labels: Option<Vec<String>>,
}

/// Reads a `.ts` file (see the [module docs](self)).
pub fn read_ts(path: impl AsRef<Path>) -> Result<TsDataset> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Error::file(
            path,
            format!("not valid UTF-8 at byte offset {}", e.valid_up_to()),
        )
    })?;
    let mut h = Header {
        problem_name: None,
        dims: None,
        series_length: None,
        equal_length: false,
        class_labels: None,
    };
    let mut in_data = false;
    let mut cases: Vec<(Vec<Vec<f32>>, Option<i64>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('%') {
            continue;
        }
        if !in_data {
            if !line.starts_with('@') {
                return Err(Error::file(
                    path,
                    format!("line {line_no}: expected an @ tag or @data before the data"),
                ));
            }
            in_data = parse_tag(line, &mut h, path, line_no)?;
            continue;
        }
        let case = parse_case(line, &h, path, line_no)?;
        if let Some((first, _)) = cases.first() {
            if first.len() != case.0.len() {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line_no}: {} dimensions, the first case has {}",
                        case.0.len(),
                        first.len()
                    ),
                ));
            }
        }
        cases.push(case);
    }
    if !in_data {
        return Err(Error::file(path, "no @data line"));
    }
    if cases.is_empty() {
        return Err(Error::file(path, "no cases after @data"));
    }
    let dims = cases[0].0.len();
    let t_max = cases
        .iter()
        .map(|(c, _)| c.first().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let n = cases.len();
    // Padding to the longest series can make a small file huge (many short
    // series and one long one): refuse a padded array far larger than the data.
    let actual: usize = cases
        .iter()
        .map(|(c, _)| c.iter().map(Vec::len).sum::<usize>())
        .sum();
    let padded = n
        .checked_mul(t_max)
        .and_then(|v| v.checked_mul(dims))
        .filter(|&p| p <= MAX_PADDED.max(actual.saturating_mul(16)));
    let Some(padded) = padded else {
        return Err(Error::file(
            path,
            format!(
                "padding {n} series to the longest ({t_max} steps, {dims} dimensions) would \
                 take far more memory than the {actual} values in the file; \
                 split the file by series length"
            ),
        ));
    };
    let mut x = vec![0.0f32; padded];
    let mut mask = vec![0.0f32; n * t_max];
    let mut lengths = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (ci, (series, label)) in cases.iter().enumerate() {
        let len = series.first().map_or(0, Vec::len);
        lengths.push(len);
        for (d, values) in series.iter().enumerate() {
            for (t, &v) in values.iter().enumerate() {
                x[(ci * t_max + t) * dims + d] = v;
            }
        }
        mask[ci * t_max..ci * t_max + len].fill(1.0);
        labels.extend(*label);
    }
    Ok(TsDataset {
        problem_name: h.problem_name,
        class_labels: h.class_labels.unwrap_or_default(),
        x: Tensor::from_vec(&[n, t_max, dims], x)?,
        mask: Tensor::from_vec(&[n, t_max], mask)?,
        lengths,
        labels,
    })
}

/// Applies one header tag; returns true at `@data`.
fn parse_tag(line: &str, h: &mut Header, path: &Path, line_no: usize) -> Result<bool> {
    let mut words = line.split_whitespace();
    let tag = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.next();
    match tag.as_str() {
        "@data" => return Ok(true),
        "@problemname" => h.problem_name = arg.map(str::to_string),
        "@timestamps" => {
            let stamps = parse_bool(arg, "@timeStamps", path, line_no)?;
            if stamps {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line_no}: time-stamped data (@timeStamps true) is not supported"
                    ),
                ));
            }
        }
        "@missing" => {
            parse_bool(arg, "@missing", path, line_no)?;
        }
        "@univariate" => {
            let uni = parse_bool(arg, "@univariate", path, line_no)?;
            if uni {
                h.dims = Some(1);
            }
        }
        "@dimension" | "@dimensions" => {
            let d = parse_count(arg, "@dimensions", path, line_no)?;
            if d == 0 {
                return Err(Error::file(
                    path,
                    format!("line {line_no}: @dimensions must be at least 1"),
                ));
            }
            h.dims = Some(d);
        }
        "@equallength" => h.equal_length = parse_bool(arg, "@equalLength", path, line_no)?,
        "@serieslength" => {
            h.series_length = Some(parse_count(arg, "@seriesLength", path, line_no)?)
        }
        "@classlabel" => {
            if parse_bool(arg, "@classLabel", path, line_no)? {
                let labels: Vec<String> = words.map(str::to_string).collect();
                if labels.is_empty() {
                    return Err(Error::file(
                        path,
                        format!("line {line_no}: @classLabel true declares no labels"),
                    ));
                }
                h.class_labels = Some(labels);
            } else {
                h.class_labels = None;
            }
        }
        "@targetlabel" => {
            let target = parse_bool(arg, "@targetLabel", path, line_no)?;
            if target {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line_no}: regression targets (@targetLabel true) are not supported"
                    ),
                ));
            }
        }
        // Other tags (e.g. aeon's @equallength variants) carry nothing we use.
        _ => {}
    }
    Ok(false)
}

fn parse_case(
    line: &str,
    h: &Header,
    path: &Path,
    line_no: usize,
) -> Result<(Vec<Vec<f32>>, Option<i64>)> {
    let mut parts: Vec<&str> = line.split(':').collect();
    let label = match &h.class_labels {
        Some(labels) => {
            let raw = parts.pop().unwrap_or("").trim();
            let idx = labels.iter().position(|l| l == raw).ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "line {line_no}: class label '{raw}' is not among those declared by \
                         @classLabel ({})",
                        labels.join(" ")
                    ),
                )
            })?;
            Some(idx as i64)
        }
        None => None,
    };
    if let Some(d) = h.dims {
        if parts.len() != d {
            return Err(Error::file(
                path,
                format!(
                    "line {line_no}: {} dimensions, the header declares {d}",
                    parts.len()
                ),
            ));
        }
    }
    let mut series = Vec::with_capacity(parts.len());
    for (d, part) in parts.iter().enumerate() {
        let mut values = Vec::new();
        for (t, cell) in part.split(',').enumerate() {
            let cell = cell.trim();
            let at = || format!("line {line_no}, dimension {}, value {}", d + 1, t + 1);
            let v = if cell == "?" || cell.eq_ignore_ascii_case("nan") {
                f32::NAN
            } else {
                let v = cell.parse::<f32>().map_err(|_| {
                    Error::file(path, format!("{}: '{cell}' is not a number", at()))
                })?;
                // `inf`, or a number beyond f32 (1e39), is no measurement; a
                // missing one is written `?` or NaN.
                if v.is_infinite() {
                    return Err(Error::file(
                        path,
                        format!(
                            "{}: '{cell}' is not finite (a missing value is written ? or NaN)",
                            at()
                        ),
                    ));
                }
                v
            };
            values.push(v);
        }
        if let Some(first) = series.first().map(|s: &Vec<f32>| s.len()) {
            if values.len() != first {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line_no}: dimension {} has {} values, dimension 1 has {first}",
                        d + 1,
                        values.len()
                    ),
                ));
            }
        }
        series.push(values);
    }
    if h.equal_length {
        if let (Some(want), Some(s)) = (h.series_length, series.first()) {
            if s.len() != want {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line_no}: series of length {}, @seriesLength declares {want}",
                        s.len()
                    ),
                ));
            }
        }
    }
    Ok((series, label))
}
