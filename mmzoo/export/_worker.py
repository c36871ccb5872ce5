"""Runs the risky half of an export in a child process; run as a script.

`python _worker.py --serve [--parent PID]` reads job files, one path per line
on stdin, and answers "done" per job on stdout. With `--parent` it dies with
that process: on Linux the kernel sends it SIGKILL when the parent dies
(`prctl(PR_SET_PDEATHSIG)`), elsewhere a thread watches the parent's id; a
conversion never runs on for nobody. A job converts a SavedModel to TFLite,
inspects the result's ops with the LiteRT analyzer and runs it with the LiteRT
interpreter (action "tflite"), or loads a SavedModel with `tf.saved_model.load`
and runs its endpoints, XLA-compiled where asked (action "saved_model").
Outputs go to `.npz` files, facts to a JSON result file.

Why a child process: the TFLite converter and calibrator can segfault or abort
(e.g. int8 calibration of a WHILE-loop LSTM), and so can XLA on a bad graph.
In a child that becomes an exit status the parent turns into a clear error;
the next export starts a fresh child. The child imports neither mmzoo nor
Keras, so every artifact is also proven to load and run without them.
"""

import json
import re
import sys
import time
import traceback

import numpy as np

# TF ops that read or produce strings; none may sit in an XLA-compiled core.
_STRING_DTYPE = 7  # types_pb2.DT_STRING


def _load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _chunks(inputs, batch_size, pad=True):
    """Yields (batch, n_real) with the last batch padded to a static size (if `pad`)."""
    n = len(next(iter(inputs.values())))
    step = batch_size or n
    for start in range(0, n, step):
        batch = {k: v[start:start + step] for k, v in inputs.items()}
        real = len(next(iter(batch.values())))
        if pad and batch_size and real < batch_size:
            batch = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - real, 0)])
                     for k, v in batch.items()}
        yield batch, real


def _run_batched(fn, inputs, batch_size, pad=True):
    outputs = {}
    for batch, real in _chunks(inputs, batch_size, pad):
        for k, v in fn(batch).items():
            outputs.setdefault(k, []).append(np.asarray(v)[:real])
    return {k: np.concatenate(v) for k, v in outputs.items()}


# --------------------------------------------------------------------- TFLite


def _convert(spec):
    import warnings

    import tensorflow as tf

    # The int8 calibrator uses the deprecated tf.lite.Interpreter internally;
    # its warning would bury the converter's own messages in the log.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")

    converter = tf.lite.TFLiteConverter.from_saved_model(
        spec["saved_model"], signature_keys=["serving_default"]
    )
    # Builtins only: an op that would need Flex makes conversion fail here
    # instead of producing a file no Python or phone runtime without Flex runs.
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    quantization = spec["quantization"]
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        calibration = _load_npz(spec["calibration"])
        n = len(next(iter(calibration.values())))
        batch_size = spec["batch_size"] or 1  # a dynamic batch: example by example

        def representative_dataset():
            for start in range(0, n - batch_size + 1, batch_size):
                yield {k: v[start:start + batch_size] for k, v in calibration.items()}

        converter.representative_dataset = representative_dataset
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.target_spec.supported_ops = ops
    start = time.perf_counter()
    content = converter.convert()
    seconds = time.perf_counter() - start
    with open(spec["output"], "wb") as f:
        f.write(content)
    return seconds


def _analyzer_text(path):
    """The LiteRT analyzer's dump of a .tflite file (op by op)."""
    try:
        from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer
    except ImportError:  # an ai_edge_litert without it: TensorFlow's front end
        import contextlib
        import io

        import tensorflow as tf

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            tf.lite.experimental.Analyzer.analyze(model_path=path)
        return out.getvalue()
    return analyzer.ModelAnalyzer(path, True, False)


def _inspect(path):
    """Operators of a .tflite file: LiteRT analyzer names, builtin vs custom."""
    from ai_edge_litert import schema_py_generated as schema

    text = _analyzer_text(path)
    analyzer_ops = sorted(set(re.findall(r"Op#\d+ (\S+?)\(", text)))
    with open(path, "rb") as f:
        model = schema.Model.GetRootAs(f.read(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    builtin, custom = set(), set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if op == schema.BuiltinOperator.CUSTOM or code.CustomCode():
            custom.add((code.CustomCode() or b"?").decode("utf-8"))
        else:
            builtin.add(names.get(op, str(op)))
    # The analyzer prints Flex ops by name (e.g. FlexTensorListReserve);
    # count them even if the flatbuffer reading above missed one.
    custom |= {op for op in analyzer_ops if op.startswith("Flex")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    tensor_types = {}
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        name = types.get(graph.Tensors(i).Type(), "?")
        tensor_types[name] = tensor_types.get(name, 0) + 1
    return {
        "ops": sorted(builtin),
        "custom_ops": sorted(custom),
        "analyzer_ops": analyzer_ops,
        "subgraphs": model.SubgraphsLength(),
        "tensor_types": tensor_types,
        "scale_mismatches": _scale_mismatches(model, graph, names, schema),
    }


# Ops whose int8 kernels copy bytes, so their input and output must share one
# quantization scale. TF 2.21's converter gives REVERSE_V2 (keras.ops.flip)
# different ones, which shifts every value it passes on.
_SAME_SCALE_OPS = ("REVERSE_V2",)


def _scale_mismatches(model, graph, names, schema):
    """Same-scale ops whose int8 input and output scales differ (wrong results)."""
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if name not in _SAME_SCALE_OPS:
            continue
        params = []
        for tensor_index in (op.Inputs(0), op.Outputs(0)):
            q = graph.Tensors(tensor_index).Quantization()
            scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
            zero = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
            params.append((None if scale is None else [float(s) for s in scale],
                           None if zero is None else [int(z) for z in zero]))
        if params[0][0] is not None and params[0] != params[1]:
            found.append({"op": name, "tensor": graph.Tensors(op.Outputs(0)).Name().decode(),
                          "input": params[0], "output": params[1]})
    return found


def dynamic_batch(details):
    """Whether a LiteRT signature's inputs all have a resizable batch (-1 in shape_signature)."""
    return all(len(v.get("shape_signature", ())) and int(v["shape_signature"][0]) == -1
               for v in details.values())


def _run_tflite(path, inputs, batch_size, dynamic_check_batch=64):
    """Runs a .tflite file on `inputs`: in its static batch (the last one padded), or,
    for a file with a dynamic batch, resized to batches of `dynamic_check_batch`."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()
    if dynamic_batch(details):
        # The signature runner resizes the inputs to each batch it is given.
        batch_size, pad = dynamic_check_batch, False
    else:
        batch_size = int(next(iter(details.values()))["shape"][0])
        pad = True

    def describe(v):  # a resizable dimension is None, as in a SavedModel's signature
        shape = v.get("shape_signature", v["shape"])
        shape = shape if len(shape) else v["shape"]
        return {"shape": [None if int(d) == -1 else int(d) for d in shape],
                "dtype": np.dtype(v["dtype"]).name}

    signature = {
        "inputs": {k: describe(v) for k, v in details.items()},
        "outputs": {k: describe(v) for k, v in runner.get_output_details().items()},
    }
    outputs = _run_batched(lambda batch: runner(**batch), inputs, batch_size, pad)
    return outputs, signature


def _tflite(spec):
    result = {"convert_seconds": _convert(spec)}
    result.update(_inspect(spec["output"]))
    if spec.get("parity_inputs"):
        outputs, signature = _run_tflite(
            spec["output"], _load_npz(spec["parity_inputs"]), spec["batch_size"],
            spec.get("dynamic_check_batch") or 64,
        )
        np.savez(spec["parity_outputs"], **outputs)
        result["signature"] = signature
    return result


# ----------------------------------------------------------------- SavedModel


def _string_ops(concrete_fn):
    """Names of ops in `concrete_fn` (and the functions it calls) that touch strings."""
    graph_def = concrete_fn.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    found = set()
    for node in nodes:
        for attr in node.attr.values():
            if attr.type == _STRING_DTYPE or _STRING_DTYPE in attr.list.type:
                found.add(node.op)
    return sorted(found)


def _spec_of(concrete_fn):
    _, kwargs = concrete_fn.structured_input_signature
    inputs = {k: {"shape": [None if d is None else int(d) for d in v.shape],
                  "dtype": v.dtype.name} for k, v in kwargs.items()}
    outputs = {k: {"shape": [None if d is None else int(d) for d in v.shape],
                   "dtype": v.dtype.name} for k, v in concrete_fn.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs}


def _saved_model(spec):
    import tensorflow as tf

    loaded = tf.saved_model.load(spec["dir"])
    result = {"signatures": {k: _spec_of(f) for k, f in loaded.signatures.items()}}
    core = loaded.signatures["serving_default"]
    batch_size = spec.get("batch_size")
    inputs = _load_npz(spec["parity_inputs"])
    outputs = {"serving_default": _run_batched(lambda b: core(**b), inputs, batch_size)}

    if spec.get("raw_inputs"):
        raw = _load_npz(spec["raw_inputs"])
        strings = {}
        for name in ("image", "audio"):  # encoded files, packed by saved_model.pack_bytes
            if f"{name}_data" in raw:
                offsets = raw[f"{name}_offsets"]
                data = raw[f"{name}_data"].tobytes()
                strings[name] = np.array(
                    [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)],
                    dtype=object)
        if "text" in raw:
            strings["text"] = raw["text"].astype(object)
        endpoint = loaded.signatures["serve_raw"]
        outputs["serve_raw"] = _run_batched(
            lambda b: endpoint(**{k: tf.constant(list(v), tf.string) for k, v in b.items()}),
            strings, batch_size,
        )

    if spec.get("xla"):
        result["string_ops_in_core"] = _string_ops(core)
        compiled = tf.function(lambda batch: core(**batch), jit_compile=True)
        start = time.perf_counter()
        outputs["xla"] = _run_batched(compiled, inputs, batch_size)
        result["xla_seconds"] = time.perf_counter() - start
        result["xla_compiled"] = True
        with_aliases = tf.saved_model.load(
            spec["dir"],
            options=tf.saved_model.LoadOptions(experimental_load_function_aliases=True),
        )
        result["function_aliases"] = sorted(getattr(with_aliases, "function_aliases", {}))

    for name, values in outputs.items():
        np.savez(f"{spec['parity_outputs']}.{name}.npz", **values)
    result["outputs"] = sorted(outputs)
    return result


def run_job(spec_path):
    """Runs the job described in `spec_path`; writes its result file."""
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        action = {"tflite": _tflite, "saved_model": _saved_model}[spec["action"]]
        result = action(spec)
    except Exception as e:  # reported to the parent, which raises a clear error
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    with open(spec["result"], "w") as f:
        json.dump(result, f, indent=2, default=str)


def serve():
    """Runs jobs until stdin closes: one spec path per line in, "done" per job out.

    One process serves a whole session, so TensorFlow is imported once, not
    once per export. Everything TensorFlow or the converter print goes to the
    log (stderr); stdout carries only the protocol.
    """
    import os

    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (the converter's among them) join the log
    for line in sys.stdin:
        spec_path = line.strip()
        if not spec_path:
            continue
        print(f"=== job {spec_path}", file=sys.stderr, flush=True)
        run_job(spec_path)
        sys.stderr.flush()
        protocol.write("done\n")
        protocol.flush()


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid, kernel_signal=True):
    """Ends this process when `parent_pid` (the process that started it) ends.

    Args:
        parent_pid: the parent's process id.
        kernel_signal: also ask Linux for SIGKILL when the parent dies (instant,
            even while the converter runs C++ code). The kernel sends it when
            the parent's *thread* that started us ends, so the parent asks for
            it only when that is its main thread.
    """
    import os
    import signal
    import threading

    if kernel_signal and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher thread below still covers it
    # The parent may have died before prctl took effect: then we are already
    # someone else's child. The thread covers systems without prctl.
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--serve"]:
        if args[1:2] == ["--parent"]:
            die_with_parent(int(args[2]), kernel_signal="--pdeathsig" in args[3:])
        serve()
    else:
        run_job(args[0])
