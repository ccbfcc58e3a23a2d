// Runs ONNX models in ONNX Runtime (CPU, onnxruntime-node) and compares their outputs with
// reference tensors, by the fixtures' metric max|out - ref| / max|ref|. Test-only: called by
// tests/export/onnx_runtime_test.cpp with a JSON spec:
//   {"runs": [{"label", "model": "path.onnx",
//              "inputs":  {NAME: {"file", "tensor"} | {"values": [...], "dims": [...]},
//                          ... each with "dtype": "float32" | "int32"},
//              "outputs": {NAME: [{"file", "tensor", "tol", "label"}, ...]}}]}
// Prints one line per comparison and exits 1 if any is over its tolerance or anything fails.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// Reads one tensor of a .safetensors file as numbers (F32, F16, I64, I32).
const cache = new Map();
function readSafetensors(file) {
  if (cache.has(file)) return cache.get(file);
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const entry = { buf, base: 8 + n, header };
  cache.set(file, entry);
  return entry;
}

function readTensor(file, name) {
  const { buf, base, header } = readSafetensors(file);
  const h = header[name];
  if (!h) throw new Error(`${file}: no tensor ${name}`);
  const [begin, end] = h.data_offsets;
  const bytes = buf.subarray(base + begin, base + end);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(count);
  for (let i = 0; i < count; ++i) {
    switch (h.dtype) {
      case 'F32': out[i] = bytes.readFloatLE(4 * i); break;
      case 'I64': out[i] = Number(bytes.readBigInt64LE(8 * i)); break;
      case 'I32': out[i] = bytes.readInt32LE(4 * i); break;
      default: throw new Error(`${file}: ${name}: unsupported dtype ${h.dtype}`);
    }
  }
  return { values: out, dims: h.shape };
}

function makeInput(spec) {
  const t = spec.values !== undefined ? { values: spec.values, dims: spec.dims }
                                      : readTensor(spec.file, spec.tensor);
  const dims = spec.dims || t.dims;
  if (spec.dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(t.values), dims);
  return new ort.Tensor('float32', Float32Array.from(t.values), dims);
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  let failures = 0;
  const sessions = new Map();
  for (const run of spec.runs) {
    if (!sessions.has(run.model)) {
      sessions.set(run.model, await ort.InferenceSession.create(run.model, {
        intraOpNumThreads: 2, interOpNumThreads: 1 }));
    }
    const session = sessions.get(run.model);
    const feeds = {};
    for (const [name, s] of Object.entries(run.inputs)) feeds[name] = makeInput(s);
    const results = await session.run(feeds);
    for (const [name, refs] of Object.entries(run.outputs)) {
      const out = results[name];
      if (!out) throw new Error(`${run.label}: no output ${name}`);
      for (const r of refs) {
        const ref = readTensor(r.file, r.tensor);
        const same = ref.dims.length === out.dims.length && ref.dims.every((d, i) => d === out.dims[i]);
        let maxDiff = 0, maxRef = 0;
        if (same) {
          for (let i = 0; i < ref.values.length; ++i) {
            maxDiff = Math.max(maxDiff, Math.abs(out.data[i] - ref.values[i]));
            maxRef = Math.max(maxRef, Math.abs(ref.values[i]));
          }
        }
        const rel = same ? (maxRef > 0 ? maxDiff / maxRef : maxDiff) : Infinity;
        const ok = same && rel <= r.tol && Number.isFinite(rel);
        if (!ok) ++failures;
        console.log(`${ok ? 'ok  ' : 'FAIL'} ${run.label} ${name} vs ${r.label}: ` +
                    (same ? `rel ${rel.toExponential(2)} (tol ${r.tol})`
                          : `shape [${out.dims}] vs [${ref.dims}]`));
      }
    }
  }
  console.log(failures ? `${failures} comparison(s) failed` : 'all comparisons passed');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(`error: ${e && e.message ? e.message : e}`);
  process.exit(2);
});
