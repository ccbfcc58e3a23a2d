"""Test-only: Debian's python3-onnx checker on ONNX files (full check: types and strict shape
inference). Prints one line per file; exit status 1 if any file fails."""
import sys

import onnx

failed = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path, load_external_data=False)
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"ok   {path}: opset {model.opset_import[0].version}, {len(model.graph.node)} nodes, ops {' '.join(ops)}")
    except Exception as e:  # the checker raises several exception types
        failed += 1
        print(f"FAIL {path}: {e}")
sys.exit(1 if failed else 0)
