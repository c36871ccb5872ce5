"""What an export measured: `ExportReport`, and the errors export raises."""

import dataclasses
import json
import os


class ExportError(RuntimeError):
    """An export that could not be completed (converter crash, failed check).

    Nothing is left at the destination path when this is raised.

    Attributes:
        report: the `ExportReport` measured so far, or `None` when the failure
            came before any measurement.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class Check:
    """One parity measurement of one runtime against the Keras model.

    Attributes:
        name: what was run (e.g. `"serving_default"`, `"serve_raw"`,
            `"xla (jit_compile=True)"`, `"litert"`).
        runtime: the runtime that produced the outputs.
        samples: number of examples compared.
        max_abs_diff: largest absolute difference to the Keras output.
        mean_abs_diff: mean absolute difference.
        agreement: fraction of matching decisions (top-1 class, thresholded
            probability) or `None` for regression outputs.
        metric: the gated metric (`"max_abs_diff"` or `"agreement"`).
        threshold: the bound on `metric`.
        passed: whether `metric` met `threshold`.
    """

    name: str
    runtime: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    agreement: float | None
    metric: str
    threshold: float
    passed: bool

    def describe(self):
        measured = getattr(self, self.metric)
        if self.metric == "agreement":
            gate = f"agreement {measured:.2%} (>= {self.threshold:.0%})"
        else:
            gate = f"max |diff| {measured:.2e} (<= {self.threshold:.0e})"
        extra = (f", max |diff| {self.max_abs_diff:.2e}" if self.metric == "agreement"
                 else (f", agreement {self.agreement:.2%}" if self.agreement is not None
                       else ""))
        status = "ok" if self.passed else "FAILED"
        return (f"{self.name:<24} {gate}{extra} on {self.samples} samples, "
                f"{self.runtime}  {status}")


@dataclasses.dataclass
class ExportReport:
    """The measured result of `mmzoo.export`; printed after every export.

    Attributes:
        path: the exported file or folder.
        format: `"saved_model"` or `"tflite"`.
        quantization: `"float32"`, `"float16"`, `"dynamic_range"` or `"int8"`.
        model_name: the Keras model's name.
        batch_size: the static batch size, or `None` for a dynamic batch.
        size_bytes: size of the model file (TFLite) or folder (SavedModel).
        files: every file written, relative to the destination's folder.
        checks: the parity `Check`s, one per runtime or endpoint.
        endpoints: SavedModel signature names with their input and output
            specs; for TFLite the single signature.
        ops: TFLite operators in the file (from the LiteRT analyzer).
        custom_ops: TFLite custom operators (Flex ops among them); must be empty.
        xla_compiled: SavedModel with `tpu=True`: whether the numeric core
            compiled with `jit_compile=True`; otherwise `None`.
        function_aliases: SavedModel function aliases (e.g. `{"tpu_func": ...}`).
        seconds: wall time of the whole export.
        notes: extra facts worth knowing (e.g. why there is no raw endpoint).
        warnings: problems found in the exported file that make its outputs
            wrong (e.g. a mis-quantized op), with what to do about them.
    """

    path: str
    format: str
    quantization: str
    model_name: str
    batch_size: int | None = None
    size_bytes: int = 0
    files: list = dataclasses.field(default_factory=list)
    checks: list = dataclasses.field(default_factory=list)
    endpoints: dict = dataclasses.field(default_factory=dict)
    ops: list = dataclasses.field(default_factory=list)
    custom_ops: list = dataclasses.field(default_factory=list)
    xla_compiled: bool | None = None
    function_aliases: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    notes: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def passed(self):
        """Whether every parity check passed and no custom (Flex) op is present."""
        return all(c.passed for c in self.checks) and not self.custom_ops

    def check(self, name):
        """Returns the `Check` named `name` (a `KeyError` if there is none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"No check named {name!r}; checks: {[c.name for c in self.checks]}")

    def to_dict(self):
        """The report as JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def __str__(self):
        size = _human_size(self.size_bytes)
        batch = "dynamic" if self.batch_size is None else str(self.batch_size)
        lines = [
            f"Exported {self.model_name!r} to {self.path}",
            f"  format       {self.format} ({self.quantization}), {size}, batch {batch}",
        ]
        for name, spec in self.endpoints.items():
            lines.append(f"  endpoint     {name}: {spec}")
        if self.format == "tflite":
            flex = ", ".join(self.custom_ops) if self.custom_ops else "none"
            lines.append(f"  ops          {len(self.ops)} builtin: {', '.join(self.ops)}")
            lines.append(f"  custom/Flex  {flex}")
        if self.xla_compiled is not None:
            lines.append(f"  XLA          numeric core compiled with jit_compile=True: "
                         f"{'yes' if self.xla_compiled else 'NO'}; function_aliases: "
                         f"{', '.join(self.function_aliases) or 'none'}")
        for c in self.checks:
            lines.append(f"  parity       {c.describe()}")
        for note in self.notes:
            lines.append(f"  note         {note}")
        for warning in self.warnings:
            lines.append(f"  WARNING      {warning}")
        lines.append(f"  files        {', '.join(self.files)}")
        lines.append(f"  took         {self.seconds:.1f}s")
        return "\n".join(lines)


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


def folder_size(path):
    """Total size in bytes of the files under `path` (or of the file `path`)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
