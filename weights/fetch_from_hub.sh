#!/usr/bin/env bash
# For machines WITH network access: downloads a checkpoint from the Hugging Face hub into the layout attnviz reads
# (config.json, model.safetensors or its shards + index, tokenizer files). attnviz itself never touches the network.
#
# Usage: weights/fetch_from_hub.sh REPO_ID [DEST]
#   REPO_ID  e.g. openai-community/gpt2, openai-community/gpt2-medium, openai-community/gpt2-large,
#            openai-community/gpt2-xl, google-bert/bert-base-uncased, google-bert/bert-large-uncased,
#            google-bert/bert-base-cased, sentence-transformers/all-MiniLM-L6-v2
#   DEST     defaults to <repo>/models/<name after the slash> (git-ignored)
# Environment: HF_ENDPOINT (default https://huggingface.co; a file:// mirror with the same layout works too),
#              HF_REVISION (default main), HF_TOKEN for gated repos,
#              PYTHON (default python3; reads a sharded index and converts a checkpoint without safetensors).
# Then: attnviz run --model DEST --prompt "..." --out out
#
# Files are fetched to DEST.partial and moved into place when complete, so an interrupted download leaves no
# half-written checkpoint behind. A repository that only has pytorch_model.bin is converted once with
# weights/convert_to_safetensors.py (needs torch and safetensors).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/.." && pwd)
repo_id=$1
dest=${2:-$repo_root/models/${repo_id##*/}}
endpoint=${HF_ENDPOINT:-https://huggingface.co}
revision=${HF_REVISION:-main}
python=${PYTHON:-python3}

auth=()
if [[ -n "${HF_TOKEN:-}" ]]; then auth=(-H "Authorization: Bearer $HF_TOKEN"); fi

partial="$dest.partial"
rm -rf "$partial"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT

# fetch FILE: 0 when downloaded, 1 when the repository does not have it; any other failure aborts.
fetch() {
    local url="$endpoint/$repo_id/resolve/$revision/$1" code
    code=$(curl -sSL --retry 3 "${auth[@]}" -w '%{http_code}' -o "$partial/$1.tmp" "$url" 2>"$partial/curl.log") || {
        rm -f "$partial/$1.tmp"
        [[ "$url" == file://* ]] && return 1 # a local mirror: curl fails outright on a missing file
        echo "fetch_from_hub: download of $url failed: $(cat "$partial/curl.log")" >&2
        exit 1
    }
    if [[ "$code" == 200 || "$code" == 000 ]]; then
        mv "$partial/$1.tmp" "$partial/$1"
        return 0
    fi
    rm -f "$partial/$1.tmp"
    if [[ "$code" == 404 ]]; then return 1; fi
    echo "fetch_from_hub: $url: HTTP $code" >&2
    exit 1
}

echo "fetching $repo_id ($revision) from $endpoint into $dest" >&2
fetch config.json || { echo "fetch_from_hub: $repo_id has no config.json" >&2; exit 1; }

if fetch model.safetensors; then
    :
elif fetch model.safetensors.index.json; then
    list_shards='import json, sys; print("\n".join(sorted(set(json.load(open(sys.argv[1]))["weight_map"].values()))))'
    shards=$("$python" -c "$list_shards" "$partial/model.safetensors.index.json")
    while IFS= read -r shard; do
        fetch "$shard" || { echo "fetch_from_hub: shard $shard is missing" >&2; exit 1; }
    done <<<"$shards"
elif fetch pytorch_model.bin; then
    "$python" "$here/convert_to_safetensors.py" "$partial/pytorch_model.bin" "$partial/model.safetensors"
    rm -f "$partial/pytorch_model.bin"
else
    echo "fetch_from_hub: $repo_id has neither model.safetensors, a sharded index nor pytorch_model.bin" >&2
    exit 1
fi

# Tokenizer files: GPT-2 ships vocab.json + merges.txt, BERT vocab.txt; most also have tokenizer.json.
found_tokenizer=false
for f in tokenizer.json vocab.json merges.txt vocab.txt tokenizer_config.json special_tokens_map.json; do
    if fetch "$f"; then found_tokenizer=true; fi
done
if ! $found_tokenizer; then echo "fetch_from_hub: $repo_id has no tokenizer files" >&2; exit 1; fi

rm -f "$partial/curl.log"
rm -rf "$dest"
mv "$partial" "$dest"
echo "$dest"
