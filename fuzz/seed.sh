#!/usr/bin/env bash
# Seeds fuzz/corpus/<target> with valid files from tests/fixtures (the
# corpus directory is git-ignored; the fuzzers grow it from these).
set -eu
cd "$(dirname "$0")"
F=../tests/fixtures
for t in npy npz pickle safetensors spec_toml spec_json idx ts csv text vocab_json model_dir; do
  mkdir -p "corpus/$t"
done
cp $F/io/*.npy corpus/npy/
cp $F/datasets/*.npz corpus/npz/
cp $F/datasets/*idx* corpus/idx/
cp $F/datasets/*.ts corpus/ts/
for f in $F/datasets/*.csv; do printf '\000' | cat - "$f" >"corpus/csv/$(basename "$f")"; done
cp $F/layers/embedding.safetensors $F/train/optim.safetensors \
  $F/rnn/lstm_l1_uni_b1_t1_i3_h5.safetensors corpus/safetensors/
find $F ../examples -name '*.toml' -size -2k -exec cp {} corpus/spec_toml/ \;
printf '{"name": "s", "input": {"shape": [5], "dtype": "int32"}, "layer": [{"type": "embedding", "input_dim": 10, "output_dim": 3, "mask_zero": true}, {"type": "bidirectional", "layer": {"type": "gru", "units": 3, "return_sequences": true}}, {"type": "lstm", "units": 2}, {"type": "dense", "units": 2}]}' >corpus/spec_json/s.json
head -c 3000 ../README.md >corpus/text/readme.txt
printf '{"chars": ["\\n", " ", "a", "\\u00e9"]}' >corpus/vocab_json/v.json
printf '\001{"epoch": 1, "step": 2, "rng": [1, 2, 3, 4], "optimizer_algorithm": "adam", "optimizer_steps": 2, "lr": 0.001, "best": [0.5, 1], "wait": 0, "history": {"epochs": []}}' >corpus/model_dir/state
# The pickled payloads of the Keras fixtures' object arrays.
python3 - <<'PY' || true
import zipfile
for name in ("imdb_tiny", "reuters_tiny"):
    z = zipfile.ZipFile(f"../tests/fixtures/datasets/{name}.npz")
    for m in z.namelist():
        b = z.read(m)
        if b"'|O'" in b[:128]:
            hl = int.from_bytes(b[8:10], "little")
            open(f"corpus/pickle/{name}_{m}", "wb").write(b[10 + hl:])
PY
echo "seeded: $(find corpus -type f | wc -l) files"
