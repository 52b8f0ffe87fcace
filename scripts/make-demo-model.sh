#!/usr/bin/env bash
# Makes the embedded demo assets in demo/: the shared micro-Swin as the GELU teacher, its ReLU student (swinq
# distill --replace gelu=relu) and a small Fashion-MNIST slice. Needs ../shared (model and data)
# and a built dist/ + addon. About 3 minutes (the distillation: 250 steps on one thread); ≈ 3.8 MB.
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

# the teacher: the shared micro-Swin (torchvision SwinTransformer trained by PyTorch with
# ../shared/tools/train_reference_swin.py --config micro; 85.5 % on the slice), with its input
# normalisation written into the file; the student: its ReLU copy distilled in-engine
MODEL=${MODEL:-../shared/models/swin-micro-fmnist.onnx}
node --input-type=module -e "
import fs from 'node:fs';
import { decodeModel, encodeModel, setMetadata } from './dist/quant/qdq-writer.js';
const m = decodeModel(fs.readFileSync('$MODEL'), '$MODEL');
setMetadata(m, { 'swinq.mean': '0.286', 'swinq.std': '0.353', 'swinq.demo.teacher': 'torchvision SwinTransformer micro (embed 48, depths 2-2), trained by PyTorch (shared/tools/train_reference_swin.py --config micro)' });
fs.writeFileSync('demo/teacher-gelu.onnx', encodeModel(m));
"
$SWINQ distill demo/teacher-gelu.onnx --data "$DATA" --replace gelu=relu --schedule all-at-once --epochs 1 --limit 8000 --batch 32 \
  --eval-limit 1000 --threads 1 --no-progress --out demo/student-relu.onnx --checkpoint "$TMP/student.ckpt"
rm -f demo/*.json demo/*.ckpt
ls -la demo demo/fmnist-slice
