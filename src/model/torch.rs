//! PyTorch state-dict interchange: the names and layouts of `weights.safetensors`.
//!
//! A gated [`Sequential`] names each weight `<layer name>.<PyTorch parameter
//! name>` (`lstm_1.weight_ih_l0`, `dense_1.weight`, `embedding_1.weight`), with
//! PyTorch's shapes and gate orders, so the state dict of a PyTorch module
//! whose submodules carry the spec's layer names loads unchanged.
//!
//! The one difference is the bias of an LSTM or SimpleRNN in Keras's
//! single-bias layout (the default): gated keeps one vector, stored under
//! PyTorch's `bias_ih_l{k}` name, where PyTorch keeps `bias_ih_l{k}` and
//! `bias_hh_l{k}`, which only ever appear as their sum. So:
//!
//! - **import** ([`load_weights`], [`apply_state_dict`]): when the model has
//!   `bias_ih<suffix>` but no `bias_hh<suffix>` and the file has both, the two
//!   are summed into the model's bias;
//! - **export** ([`export_torch_state_dict`], and every `weights.safetensors` a
//!   model directory writes): the single bias is written as `bias_ih<suffix>`
//!   and zeros as `bias_hh<suffix>`, so the file loads into `nn.LSTM` /
//!   `nn.RNN` with `load_state_dict` unchanged.
//!
//! A GRU with `reset_after = false` (one bias) has no PyTorch counterpart: its
//! n-gate recurrent bias sits inside the reset product, so on import the two
//! biases are summed only when the n block of `bias_hh` is zero.
//!
//! Missing keys, unexpected keys and shape mismatches are errors that name
//! the file, the key and both shapes; nothing is written into the model unless
//! every key checks out. See `docs/weights.md` for the full mapping, Keras's
//! included.

use std::collections::BTreeMap;
use std::path::Path;

use super::Sequential;
use crate::io::weights::{load_safetensors, save_safetensors, NamedTensors};
use crate::{Error, Result, Tensor};

/// The model's weights as a PyTorch-compatible state dict: the model's own
/// names and shapes, plus a zero `bias_hh<suffix>` for every single-bias
/// recurrent layer (see the module docs). Sorted as the model lists them.
pub fn torch_state_dict(model: &Sequential) -> Result<NamedTensors> {
    let weights = model.named_weights();
    let have: Vec<&str> = weights.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut out = Vec::with_capacity(weights.len() + 2);
    for (name, shape, data) in &weights {
        out.push((name.clone(), Tensor::from_vec(shape, data.to_vec())?));
        if let Some(hh) = companion_bias_hh(name) {
            if !have.contains(&hh.as_str()) {
                out.push((hh, Tensor::zeros(shape)));
            }
        }
    }
    Ok(out)
}

/// Writes [`torch_state_dict`] to `path` (F32 safetensors, atomically). The
/// file loads with `model.load_state_dict(safetensors.torch.load_file(path))`
/// into a PyTorch module whose submodules carry the layer names.
pub fn export_torch_state_dict(model: &Sequential, path: &Path) -> Result<()> {
    let dict = torch_state_dict(model)?;
    let refs: Vec<(&str, &Tensor)> = dict.iter().map(|(n, t)| (n.as_str(), t)).collect();
    save_safetensors(path, &refs)
}

/// Loads a safetensors state dict (written by gated or by PyTorch) into
/// `model`; see [`apply_state_dict`]. Errors name `path`.
pub fn load_weights(model: &mut Sequential, path: &Path) -> Result<()> {
    let tensors = load_safetensors(path)?;
    apply_state_dict(model, &tensors, path)
}

/// `<layer>.bias_ih<suffix>` -> `<layer>.bias_hh<suffix>`.
fn companion_bias_hh(name: &str) -> Option<String> {
    let (layer, param) = name.split_once('.')?;
    let suffix = param.strip_prefix("bias_ih")?;
    Some(format!("{layer}.bias_hh{suffix}"))
}

/// `<layer>.bias_hh<suffix>` -> (`<layer>.bias_ih<suffix>`, `<layer>.weight_hh<suffix>`).
fn bias_ih_of(name: &str) -> Option<(String, String)> {
    let (layer, param) = name.split_once('.')?;
    let suffix = param.strip_prefix("bias_hh")?;
    Some((
        format!("{layer}.bias_ih{suffix}"),
        format!("{layer}.weight_hh{suffix}"),
    ))
}

fn list(names: &[String]) -> String {
    const SHOW: usize = 6;
    let mut s = names
        .iter()
        .take(SHOW)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOW {
        s.push_str(&format!(" and {} more", names.len() - SHOW));
    }
    s
}

/// Checks a state dict against `model` and, when every key and shape agrees,
/// copies it in. Single-bias recurrent layers take `bias_ih + bias_hh` (see
/// the module docs). `path` names the source in errors. On error the model is
/// unchanged.
pub fn apply_state_dict(model: &mut Sequential, tensors: &NamedTensors, path: &Path) -> Result<()> {
    let wanted: BTreeMap<String, Vec<usize>> = model
        .named_weights()
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    let file: BTreeMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();

    // Shapes of the keys both sides have.
    for (name, shape) in &wanted {
        if let Some(t) = file.get(name.as_str()) {
            if t.shape() != shape.as_slice() {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor '{name}' has shape {:?}, but the model's {name} has shape {shape:?}",
                        t.shape()
                    ),
                ));
            }
        }
    }
    // Extra keys: only a bias_hh folded into a single bias is allowed.
    let mut folded: BTreeMap<String, &Tensor> = BTreeMap::new();
    let mut extra = Vec::new();
    for (name, t) in &file {
        if wanted.contains_key(*name) {
            continue;
        }
        match bias_ih_of(name) {
            Some((ih, whh)) if wanted.contains_key(&ih) => {
                let shape = &wanted[&ih];
                if t.shape() != shape.as_slice() {
                    return Err(Error::file(
                        path,
                        format!(
                            "tensor '{name}' has shape {:?}, but it is added to the model's \
                             {ih}, whose shape is {shape:?}",
                            t.shape()
                        ),
                    ));
                }
                check_gru_fold(name, t, wanted.get(&whh).map(Vec::as_slice), path)?;
                folded.insert(ih, t);
            }
            _ => extra.push(name.to_string()),
        }
    }
    let missing: Vec<String> = wanted
        .keys()
        .filter(|n| !file.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "missing {} key(s) the model needs: {}",
                missing.len(),
                list(&missing)
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "{} unexpected key(s) the model has no weight for: {}",
                extra.len(),
                list(&extra)
            ));
        }
        let known: Vec<String> = wanted.keys().cloned().collect();
        return Err(Error::file(
            path,
            format!("{} (the model's keys: {})", parts.join("; "), list(&known)),
        ));
    }
    // Everything checks out: copy in.
    for (name, shape) in &wanted {
        let t = file[name.as_str()];
        let mut data = t.data().to_vec();
        if let Some(hh) = folded.get(name) {
            data.iter_mut().zip(hh.data()).for_each(|(a, b)| *a += b);
        }
        model.set_weight(name, shape, &data)?;
    }
    Ok(())
}

/// A single-bias layer with three gates is a GRU with `reset_after = false`:
/// its n-gate `bias_hh` cannot be folded into `bias_ih`, so it must be zero.
fn check_gru_fold(name: &str, t: &Tensor, weight_hh: Option<&[usize]>, path: &Path) -> Result<()> {
    let gates = match weight_hh {
        Some([rows, cols]) if *cols > 0 => rows / cols,
        _ => return Ok(()),
    };
    if gates != 3 {
        return Ok(());
    }
    let units = t.len() / 3;
    if t.data()[2 * units..].iter().any(|v| *v != 0.0) {
        return Err(Error::file(
            path,
            format!(
                "tensor '{name}' has a non-zero n-gate block, which a GRU with \
                 reset_after = false cannot hold (it has one bias); use reset_after = true, \
                 as PyTorch's nn.GRU"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::parse_spec;

    fn model(layer: &str) -> Sequential {
        let text = format!(
            "[input]\nshape = [5, 3]\ndtype = \"float32\"\n[[layer]]\n{layer}\n[[layer]]\ntype = \"dense\"\nunits = 2\n"
        );
        parse_spec(Path::new("m.toml"), &text, false, 1).unwrap()
    }

    fn get<'a>(d: &'a NamedTensors, name: &str) -> &'a Tensor {
        &d.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn bidirectional_export_has_reverse_keys_and_round_trips() {
        let m = model("type = \"bidirectional\"\n[layer.layer]\ntype = \"lstm\"\nunits = 4");
        let dict = torch_state_dict(&m).unwrap();
        let names: Vec<&str> = dict.iter().map(|(n, _)| n.as_str()).collect();
        for k in [
            "bidirectional_1.bias_hh_l0",
            "bidirectional_1.bias_hh_l0_reverse",
            "bidirectional_1.weight_ih_l0_reverse",
        ] {
            assert!(names.contains(&k), "{k} not in {names:?}");
        }
        assert!(get(&dict, "bidirectional_1.bias_hh_l0_reverse")
            .data()
            .iter()
            .all(|v| *v == 0.0));
        let mut other =
            model("type = \"bidirectional\"\n[layer.layer]\ntype = \"lstm\"\nunits = 4");
        other.params_mut()[0]
            .values
            .iter_mut()
            .for_each(|v| *v = 9.0);
        apply_state_dict(&mut other, &dict, Path::new("d")).unwrap();
        assert_eq!(other.params()[0].values, m.params()[0].values);
    }

    #[test]
    fn two_bias_layers_need_both_keys() {
        let m = model("type = \"cudnn_lstm\"\nunits = 4");
        let mut dict = torch_state_dict(&m).unwrap();
        assert_eq!(
            dict.iter().filter(|(n, _)| n.contains("bias_hh")).count(),
            1
        );
        dict.retain(|(n, _)| !n.contains("bias_hh"));
        let mut other = model("type = \"cudnn_lstm\"\nunits = 4");
        let e = apply_state_dict(&mut other, &dict, Path::new("d")).unwrap_err();
        assert!(e.to_string().contains("cu_dnnlstm_1.bias_hh_l0"), "{e}");
    }

    #[test]
    fn gru_without_reset_after_folds_only_a_zero_n_block() {
        let layer = "type = \"gru\"\nunits = 4\nreset_after = false";
        let m = model(layer);
        let mut dict = torch_state_dict(&m).unwrap();
        let mut other = model(layer);
        apply_state_dict(&mut other, &dict, Path::new("d")).unwrap();
        for (n, t) in dict.iter_mut() {
            if n == "gru_1.bias_hh_l0" {
                t.data_mut()[0] = 1.0; // r block: folds
            }
        }
        apply_state_dict(&mut other, &dict, Path::new("d")).unwrap();
        let b = get(&dict, "gru_1.bias_ih_l0").data()[0];
        let got = other
            .named_weights()
            .into_iter()
            .find(|(n, _, _)| n == "gru_1.bias_ih_l0")
            .unwrap()
            .2[0];
        assert_eq!(got, b + 1.0);
        for (n, t) in dict.iter_mut() {
            if n == "gru_1.bias_hh_l0" {
                t.data_mut()[11] = 1.0; // n block: refused
            }
        }
        let before = other.params()[0].values.clone();
        let e = apply_state_dict(&mut other, &dict, Path::new("d")).unwrap_err();
        assert!(e.to_string().contains("reset_after"), "{e}");
        assert_eq!(other.params()[0].values, before, "changed on error");
    }
}
