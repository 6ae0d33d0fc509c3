//! Keras 2's `model.summary()` table for sequential models: line length 65,
//! columns at 29 and 55 characters.

use super::sequential::Sequential;

const LINE: usize = 65;
const COLS: [usize; 3] = [29, 55, 65];

/// `20223927` -> `20,223,927`.
pub fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `[None, Some(10), Some(50)]` -> `(None, 10, 50)`; a single dimension keeps
/// Python's trailing comma, `(None,)`.
pub fn format_shape(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("None".to_string(), |v| v.to_string()))
        .collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

fn row(fields: [&str; 3]) -> String {
    let mut line = String::new();
    for (field, &end) in fields.iter().zip(&COLS) {
        line.push_str(field);
        // Keras truncates a field that runs into the next column.
        if line.chars().count() > end - 1 {
            line = line.chars().take(end - 1).collect();
        }
        while line.chars().count() < end {
            line.push(' ');
        }
    }
    line.trim_end().to_string()
}

pub(super) fn summary(model: &Sequential) -> String {
    let mut out = String::new();
    out.push_str(&format!("Model: \"{}\"\n", model.name()));
    out.push_str(&"_".repeat(LINE));
    out.push('\n');
    out.push_str(&row(["Layer (type)", "Output Shape", "Param #"]));
    out.push('\n');
    out.push_str(&"=".repeat(LINE));
    out.push('\n');
    let mut rows = vec![(
        format!("{} (InputLayer)", model.input_name()),
        format_shape(&model.input_shape_with_batch()),
        "0".to_string(),
    )];
    let shapes = model.layer_output_shapes().unwrap_or_default();
    for (layer, shape) in model.layers().iter().zip(shapes) {
        let count: usize = layer.params().iter().map(|p| p.len()).sum();
        rows.push((
            format!("{} ({})", layer.name(), layer.type_name()),
            format_shape(&shape),
            count.to_string(),
        ));
    }
    for (i, (a, b, c)) in rows.iter().enumerate() {
        out.push_str(&row([a, b, c]));
        out.push('\n');
        out.push_str(&if i + 1 == rows.len() {
            "=".repeat(LINE)
        } else {
            "_".repeat(LINE)
        });
        out.push('\n');
    }
    let (total, trainable) = model.param_counts();
    out.push_str(&format!("Total params: {}\n", format_count(total)));
    out.push_str(&format!("Trainable params: {}\n", format_count(trainable)));
    out.push_str(&format!(
        "Non-trainable params: {}\n",
        format_count(total - trainable)
    ));
    out.push_str(&"_".repeat(LINE));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_shapes() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(645), "645");
        assert_eq!(format_count(223_877), "223,877");
        assert_eq!(format_count(20_223_927), "20,223,927");
        assert_eq!(format_shape(&[None, Some(10), Some(50)]), "(None, 10, 50)");
        assert_eq!(format_shape(&[None]), "(None,)");
        assert_eq!(
            row(["lstm_1 (LSTM)", "(None, 10, 128)", "91648"]),
            "lstm_1 (LSTM)                (None, 10, 128)           91648"
        );
    }
}
