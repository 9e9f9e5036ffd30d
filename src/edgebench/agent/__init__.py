"""edgebench's on-board agent: a package shipped to the board as one file, ``agent.pyz``, run once per variant.

It runs on the board with Python >= 3.6, numpy and one runtime (onnxruntime,
ai_edge_litert, tflite_runtime or tensorflow.lite); psutil is optional. No edgebench
install is needed there: `edgebench.agent.build` packs these modules into a reproducible
zipapp that is deployed by sha256, checked on the board before every process
(`edgebench.targets.remote` ``PY_VERIFY_AGENT``) and run as ``python agent.pyz JOB.json``
(`entry` has the command line). The host imports the same modules for what both sides
share (fidelity, eval data, inputs, dtype mapping, the probe, the job and result schema),
so that logic exists once; the names below are that interface.

Method (every default can be overridden in the job's ``measure`` block; `measuring`):

1. cold start: the model load (session / interpreter creation) and the first inference
   are timed separately;
2. warm-up: at least ``warmup_min_iters`` inferences and ``warmup_min_s`` seconds;
3. steady state: one inference per sample, timed with ``time.perf_counter_ns`` (3.6:
   ``perf_counter`` in ns; `clock`), until at least ``min_rounds`` samples and
   ``min_time_s`` seconds, stopping at ``max_time_s`` or ``max_rounds`` whatever comes
   first; every raw sample is returned;
4. memory (`memory`): resident set size (RSS) of this fresh process: before the runtime is
   imported, before the load, after the load, after the steady state, and the peak
   (``VmHWM``, or ``ru_maxrss``) at the end, the same definition for every runtime;
5. accuracy on the deployed eval set (top-1, Wilson 95% interval) and fidelity against
   the parent's reference outputs (top-1 agreement, max / mean abs difference, cosine;
   `evaluation`);
6. device state (governor, frequency, temperature, steal) before and after, with warnings
   (`device`);
7. with a ``sustained`` block, the model then runs on for that long and a timeline is
   recorded per window: count, p50/p99, frequency, temperature, throttle flags and the
   power of the sources the board has (`sustained`, `power`), the sensors' overhead stated.

Modules: `schema` (the job and result keys, both sides), `base`, `clock`, `memory`,
`device`, `hashing`, `runtimes`, `inputs`, `evaldata`, `evaluation`, `jobs`, `measuring`,
`paired`, `profiling`, `sustained`, `power`, `probe`, `entry`; the board tools run as ``python -c`` text
`boardlock` and `boardkill` (and `hashing`); `build` (host only) makes the archive.

Keep every module free of edgebench imports (relative imports within the package only)
and of syntax or library calls newer than Python 3.6 and numpy 1.19 (JetPack 4 boards): no
``from __future__ import annotations`` (annotations are evaluated at def time, so use
``typing`` generics), no dataclasses, no walrus, no ``subprocess.run(capture_output=)``.
``tests/unit/test_bench_agent.py`` checks each module with vermin and with
``ast.parse(feature_version=(3, 6))``.
"""

from .base import AgentError, first_line, is_numpy_abi_error
from .clock import now_ns, ns_clock
from .device import COOLDOWN_MAX_S, DEFAULT_DEVICE, cool_down, cpu_ticks, device_state, device_warnings, steal_fraction
from .entry import main, run_job
from .evaldata import inputs_for, load_eval
from .evaluation import (
    DEFAULT_MIN_COSINE,
    accuracy,
    accuracy_unknown,
    eval_batch_size,
    evaluate,
    evaluate_outputs,
    fidelity,
    is_classifier,
    output_fidelity,
    output_names,
    wilson,
)
from .inputs import build_inputs, check_dims, concrete_shape, make_input, unnamed_dim
from .measuring import DEFAULT_MEASURE, measure, measure_job
from .memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from .paired import paired_job
from .power import NO_SENSOR, CommandMeter, PowerMeter, hwmon_rails, parse_power, rapl_domains
from .probe import probe
from .profiling import PROFILE_DEFAULTS, TFLITE_NO_TIMING, RssTimeline, parse_ort_trace, profile_job, profile_tflite
from .runtimes import (
    RUNTIME_OF_FORMAT,
    RUNTIMES,
    OnnxRuntimeModel,
    Signature,
    TFLiteModel,
    check_sha256,
    runtime_in_use,
    tflite_interpreter,
    tflite_ops,
)
from .schema import AGENT_VERSION, RESULT_SCHEMA
from .sustained import DEFAULT_SUSTAINED, Sensors, decode_throttled, run_sustained, sustained_problem, window_stats

# the names the host and its tests knew when the agent was one file, private ones included
_first_line = first_line
_is_numpy_abi_error = is_numpy_abi_error
_inputs_for = inputs_for
_profile_tflite = profile_tflite

__all__ = [
    "AGENT_VERSION",
    "COOLDOWN_MAX_S",
    "DEFAULT_DEVICE",
    "DEFAULT_MEASURE",
    "DEFAULT_MIN_COSINE",
    "DEFAULT_SUSTAINED",
    "NO_SENSOR",
    "PROFILE_DEFAULTS",
    "RESULT_SCHEMA",
    "RUNTIMES",
    "RUNTIME_OF_FORMAT",
    "TFLITE_NO_TIMING",
    "AgentError",
    "CommandMeter",
    "OnnxRuntimeModel",
    "PowerMeter",
    "RssTimeline",
    "Sensors",
    "Signature",
    "TFLiteModel",
    "_first_line",
    "_inputs_for",
    "_is_numpy_abi_error",
    "_profile_tflite",
    "accuracy",
    "accuracy_unknown",
    "build_inputs",
    "check_dims",
    "check_sha256",
    "concrete_shape",
    "cool_down",
    "cpu_ticks",
    "decode_throttled",
    "device_state",
    "device_warnings",
    "eval_batch_size",
    "evaluate",
    "evaluate_outputs",
    "fidelity",
    "first_line",
    "hwmon_rails",
    "inputs_for",
    "is_classifier",
    "is_numpy_abi_error",
    "load_eval",
    "main",
    "make_input",
    "measure",
    "measure_job",
    "now_ns",
    "ns_clock",
    "output_fidelity",
    "output_names",
    "paired_job",
    "parse_ort_trace",
    "parse_power",
    "peak_rss_bytes",
    "probe",
    "profile_job",
    "profile_tflite",
    "rapl_domains",
    "reset_peak_rss",
    "rss_bytes",
    "run_job",
    "run_sustained",
    "runtime_in_use",
    "steal_fraction",
    "sustained_problem",
    "tflite_interpreter",
    "tflite_ops",
    "unnamed_dim",
    "wilson",
    "window_stats",
]
