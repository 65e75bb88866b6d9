// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on a float32
// batch and prints every output as JSON: {"name": {"dims": [...], "data": [...]}}.
//
//   GOTRANSFER_ORT_NODE=DIR node run_ort.js model.onnx input.f32 N H W
//
// DIR holds node_modules/onnxruntime-node (npm install --prefix DIR
// onnxruntime-node). input.f32 is the raw little-endian (N, H, W, 3) batch.
const path = require('path');
const fs = require('fs');
const ort = require(path.join(process.env.GOTRANSFER_ORT_NODE, 'node_modules', 'onnxruntime-node'));

(async () => {
  const [model, input, n, h, w] = process.argv.slice(2);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ images: new ort.Tensor('float32', data, [+n, +h, +w, 3]) });
  const res = {};
  for (const k of Object.keys(out)) res[k] = { dims: out[k].dims, data: Array.from(out[k].data) };
  process.stdout.write(JSON.stringify(res));
})().catch((e) => { console.error(String(e)); process.exit(1); });
