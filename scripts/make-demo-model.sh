#!/usr/bin/env bash
# Makes the embedded demo assets in demo/ with the project's own tools (swinq init → train →
# distill --replace gelu=relu) plus a small Fashion-MNIST slice. Needs ../shared/data/fashion-mnist
# and a built dist/ + addon. Minutes on 2 cores; outputs stay well under 1.5 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/fashion-mnist}
[ -d "$DATA" ] || { echo "make-demo-model: $DATA not found (Fashion-MNIST IDX .gz)" >&2; exit 1; }
SWINQ="node dist/cli/main.js"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# data slice: first 500 t10k images for accuracy, first 256 train images for calibration
mkdir -p demo/fmnist-slice
node --input-type=module -e "
import { readIdx, encodeIdx } from './dist/io/idx.js';
import zlib from 'node:zlib'; import fs from 'node:fs';
const cut = (src, dst, n) => { const a = readIdx('$DATA/' + src); const shape = [n, ...a.shape.slice(1)];
  const per = shape.slice(1).reduce((x, y) => x * y, 1);
  fs.writeFileSync('demo/fmnist-slice/' + dst, zlib.gzipSync(encodeIdx({ shape, data: a.data.subarray(0, n * per), type: a.type }), { level: 9 })); };
cut('t10k-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz', 500);
cut('t10k-labels-idx1-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 500);
cut('train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte.gz', 256);
cut('train-labels-idx1-ubyte.gz', 'train-labels-idx1-ubyte.gz', 256);
"

# a tiny Swin (smaller than the init defaults so both models stay small)
$SWINQ init "$TMP/init.onnx" --embed 24 --depths 2,2 --heads 2,4 --seed 1
$SWINQ train "$TMP/init.onnx" --data "$DATA" --epochs 1 --limit 20000 --batch 32 --lr 3e-3 --eval-limit 1000 --no-progress --out demo/teacher-gelu.onnx
$SWINQ distill demo/teacher-gelu.onnx --data "$DATA" --replace gelu=relu --schedule all-at-once --epochs 1 --limit 8000 --batch 32 \
  --eval-limit 1000 --no-progress --out demo/student-relu.onnx --checkpoint "$TMP/student.ckpt"
rm -f demo/*.json demo/*.ckpt
ls -la demo demo/fmnist-slice
