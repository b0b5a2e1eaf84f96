"""Every bad input to every command: exit code 2, one line naming the problem and the fix,
and nothing written that a rerun could mistake for a result.

The matrix is a table, ``CASES``: an id, the command line (``{name}`` fields are the bad
files made by the ``files`` fixture, ``{out}`` a fresh output folder of the case) and a
fragment the one-line message must contain. Adding a command's cases is adding rows.
Each case runs in-process through typer's ``CliRunner``; the test then checks

* the exit code is 2 and stderr ends in one line, ``error: ...``, with the fragment (status
  lines such as the embedded-MNIST notice may precede it);
* no traceback;
* nothing in the case's folders changed: no new file, no file rewritten (a refused run
  writes nothing).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from causalkit.cli import app

runner = CliRunner()


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    fragment: str
    xfail: str = ""


def C(id: str, argv: str, fragment: str, xfail: str = "") -> Case:  # noqa: N802
    return Case(id, tuple(argv.split()), fragment, xfail)


CASES = [
    # ---- outputs (every command that writes)
    C("generate-out-is-file", "generate -g tiny -n 1 --out {afile}", "is an existing file"),
    C("generate-out-under-file", "generate -g tiny -n 1 --out {afile}/sub",
      "an existing file, not a folder"),
    C("generate-out-unwritable", "generate -g tiny -n 1 --out /proc/causalkit-out",
      "is not writable"),
    C("bound-out-is-file", "bound --scm genint-example --strategy Z1 --out {afile}",
      "is an existing file"),
    C("bound-out-unwritable", "bound --scm genint-example --strategy Z1 --out /proc/x",
      "is not writable"),
    C("data-build-out-is-file", "data build colored-mnist --source embedded --out {afile}",
      "is an existing file"),
    C("data-show-out-is-file", "data show colored-mnist --source embedded --out {afile}",
      "is an existing file"),
    C("data-show-out-unwritable", "data show colored-mnist --source embedded --out /proc/x",
      "is not writable"),
    C("probe-out-is-file", "probe-correlation --data colored-mnist --generator scm:colored-mnist"
      " --out {afile}", "is an existing file"),
    C("probe-regressor-in-file", "probe-correlation --data colored-mnist --generator "
      "scm:colored-mnist --regressor {afile}/r.pt", "is an existing file"),
    C("probe-regressor-is-folder", "probe-correlation --data colored-mnist --generator "
      "scm:colored-mnist --regressor {folder}", "is a folder"),
    C("train-out-is-file", "train --method erm --source embedded --out {afile}",
      "is an existing file"),
    C("train-out-unwritable", "train --method erm --source embedded --out /proc/x",
      "is not writable"),
    C("reproduce-out-is-file", "reproduce cgn-mnist --quick --out {afile}",
      "is an existing file"),
    C("evaluate-out-is-file", "evaluate --model {model_ok} --out {afile}",
      "is an existing file"),
    # ---- devices
    C("generate-cuda", "generate -g tiny -n 1 --out {out} --device cuda", "CUDA is not"),
    C("generate-cuda-index", "generate -g tiny -n 1 --out {out} --device cuda:7",
      "cuda:7"),
    C("generate-device-unknown", "generate -g tiny -n 1 --out {out} --device gpu",
      "unknown device 'gpu'"),
    C("train-cuda", "train --method erm --source embedded --out {out} --device cuda",
      "CUDA is not"),
    C("train-device-unknown", "train --method erm --out {out} --device tpu:0",
      "unknown device"),
    C("evaluate-cuda", "evaluate --model {model_ok} --device cuda", "CUDA is not"),
    C("reproduce-cuda", "reproduce cgn-mnist --quick --out {out} --device cuda",
      "CUDA is not"),
    # ---- generate: counts, classes, specs, directions
    C("generate-per-class-0", "generate -g tiny -n 0 --out {out}", "--per-class must be"),
    C("generate-batch-size-0", "generate -g tiny -n 1 --batch-size 0 --out {out}",
      "--batch-size must be"),
    C("generate-shard-size-0", "generate -g tiny -n 1 --shard-size 0 --out {out}",
      "--shard-size must be"),
    C("generate-classes-text", "generate -g tiny -n 1 --classes a,b --out {out}",
      "--classes must be comma-separated integers"),
    C("generate-classes-range", "generate -g tiny -n 1 --classes 0,999 --out {out}", "999"),
    C("generate-scheme-unknown", "generate -g nope:1 -n 1 --out {out}",
      "unknown generator"),
    C("generate-tiny-seed-text", "generate -g tiny:x -n 1 --out {out}",
      "tiny takes an integer seed"),
    C("generate-strategy-bad", "generate -g tiny -n 1 -s t=1,k=zz --out {out}", "k"),
    C("generate-directions-and-layer", "generate -g tiny -n 1 --directions {garbage} "
      "--layer generator.gen_z --out {out}", "not both"),
    C("generate-directions-garbage", "generate -g tiny -n 1 --directions {garbage} "
      "--out {out}", "is not a directions file"),
    C("generate-directions-text", "generate -g tiny -n 1 --directions {text} --out {out}",
      "is not a directions file"),
    C("generate-directions-torch-file", "generate -g tiny -n 1 --directions {pickled} "
      "--out {out}", "is not a directions file"),
    C("generate-directions-missing", "generate -g tiny -n 1 --directions {missing} "
      "--out {out}", "no such file"),
    C("generate-layer-unknown", "generate -g tiny -n 1 --layer no.such.layer --out {out}",
      "no.such.layer"),
    C("generate-k-too-large", "generate -g tiny -n 1 -s t=1,k=999,s=1 --out {out}", "999"),
    # ---- small-GAN folders (the one torch reader and the one JSON reader)
    C("small-missing-folder", "generate -g small:{missing} -n 1 --out {out}", "not found"),
    C("small-config-binary", "generate -g small:{sg_config_binary} -n 1 --out {out}",
      "is not text"),
    C("small-config-not-json", "generate -g small:{sg_config_text} -n 1 --out {out}",
      "is not valid JSON"),
    C("small-config-list", "generate -g small:{sg_config_list} -n 1 --out {out}",
      "not a JSON object"),
    C("small-config-unknown-key", "generate -g small:{sg_config_key} -n 1 --out {out}",
      "unknown small-GAN config keys"),
    C("small-config-bad-value", "generate -g small:{sg_config_value} -n 1 --out {out}",
      "must be a positive int"),
    C("small-weights-garbage", "generate -g small:{sg_w_garbage} -n 1 --out {out}",
      "is not a torch file"),
    C("small-weights-empty", "generate -g small:{sg_w_empty} -n 1 --out {out}", "is empty"),
    C("small-weights-truncated", "generate -g small:{sg_w_truncated} -n 1 --out {out}",
      "is truncated or corrupt"),
    C("small-weights-pickled", "generate -g small:{sg_w_pickled} -n 1 --out {out}",
      "refuses to unpickle it"),
    C("small-weights-list", "generate -g small:{sg_w_list} -n 1 --out {out}",
      "not a state dict"),
    C("small-weights-shape", "generate -g small:{sg_w_shape} -n 1 --out {out}",
      "wrong shapes"),
    C("small-weights-missing-keys", "generate -g small:{sg_w_keys} -n 1 --out {out}",
      "missing keys"),
    # ---- BigGAN folders (config.json + pytorch_model.bin)
    C("biggan-weights-garbage", "generate -g biggan:{bg_w_garbage} -n 1 --out {out}",
      "is not a torch file"),
    C("biggan-weights-pickled", "generate -g biggan:{bg_w_pickled} -n 1 --out {out}",
      "refuses to unpickle"),
    C("biggan-weights-shape", "generate -g biggan:{bg_w_shape} -n 1 --out {out}",
      "do not match its config.json"),
    C("biggan-config-text", "generate -g biggan:{bg_config_text} -n 1 --out {out}",
      "is not valid JSON"),
    C("biggan-config-binary", "generate -g biggan:{bg_config_binary} -n 1 --out {out}",
      "not text"),
    C("biggan-missing-folder", "generate -g biggan:{folder} -n 1 --out {out}", "not found"),
    # ---- bound: text input and numbers
    C("bound-nan-cell", "bound --data {csv_nan}", "blank or missing"),
    C("bound-blank-cell", "bound --data {csv_blank}", "blank or missing"),
    C("bound-binary-csv", "bound --data {garbage}", "is not text (binary data)"),
    C("bound-empty-csv", "bound --data {empty}", "the file is empty"),
    C("bound-ragged-csv", "bound --data {csv_ragged}", "different number of fields"),
    C("bound-missing-column", "bound --data {csv_ok} --treatment T", "missing column"),
    C("bound-count-text", "bound --data {csv_count_text}", "must be numeric"),
    C("bound-count-negative", "bound --data {csv_count_neg}", "non-negative"),
    C("bound-prob-sum", "bound --data {csv_prob_sum}", "sum to 1"),
    C("bound-treatment-is-outcome", "bound --data {csv_ok} --treatment X --outcome X",
      "the same column"),
    C("bound-zero-counts", "bound --data {csv_count_zero}", "the table is empty"),
    C("bound-x-absent", "bound --data {csv_ok} --x 5", "do not occur"),
    C("bound-data-missing", "bound --data {missing}", "does not exist"),
    C("bound-data-and-scm", "bound --data {csv_ok} --scm genint-example",
      "exactly one of"),
    C("bound-scm-unknown", "bound --scm no-such-scm --strategy Z1", "no-such-scm"),
    C("bound-nuisance-alone", "bound --data {csv_ok} --nuisance Z", "--interventional"),
    C("bound-interventional-binary", "bound --data {csv_ok} --interventional {garbage} "
      "--nuisance Z", "is not text (binary data)"),
    C("bound-interventional-nan", "bound --data {csv_ok} --interventional {csv_nan} "
      "--nuisance X", "blank or missing"),
    # ---- data: MNIST sources
    C("data-idx-27x27", "data build colored-mnist --source mnist:{mnist27} --no-cache",
      "28 x 28"),
    C("data-idx-truncated", "data build colored-mnist --source mnist:{mnist_trunc} "
      "--no-cache", "truncated"),
    C("data-idx-label-count", "data build colored-mnist --source mnist:{mnist_count} "
      "--no-cache", "labels for"),
    C("data-idx-missing-dir", "data build colored-mnist --source mnist:{missing}",
      "does not exist"),
    C("data-rho", "data build colored-mnist --source embedded --rho 2 --no-cache",
      "rho must be a probability"),
    C("data-split-unknown", "data build colored-mnist --source embedded --split valid "
      "--no-cache", "unknown split 'valid'"),
    C("data-textures-not-folder", "data build wildlife-mnist --source embedded --textures "
      "{afile} --split train --no-cache", "texture folder"),
    C("data-variant-unknown", "data build no-such-mnist --source embedded", "no-such-mnist"),
    # ---- probe-correlation: the regressor file
    C("probe-regressor-garbage", "probe-correlation --data colored-mnist --generator "
      "scm:colored-mnist --regressor {garbage} --mnist-source embedded", "is not a torch file"),
    C("probe-regressor-pickled", "probe-correlation --data colored-mnist --generator "
      "scm:colored-mnist --regressor {pickled} --mnist-source embedded", "refuses to unpickle"),
    C("probe-regressor-state-dict", "probe-correlation --data colored-mnist --generator "
      "scm:colored-mnist --regressor {state_ok} --mnist-source embedded",
      "is not a nuisance regressor"),
    C("probe-categories", "probe-correlation --data colored-mnist --generator scm:colored-mnist "
      "--categories 1,x", "--categories"),
    # ---- train: checkpoints in the run folder, options
    C("train-checkpoint-garbage", "train --method erm --source embedded --n-train 100 "
      "--out {run_garbage}", "is not a torch file"),
    C("train-checkpoint-truncated", "train --method erm --source embedded --n-train 100 "
      "--out {run_truncated}", "is truncated or corrupt"),
    C("train-checkpoint-pickled", "train --method erm --source embedded --n-train 100 "
      "--out {run_pickled}", "refuses to unpickle"),
    C("train-checkpoint-foreign", "train --method erm --source embedded --n-train 100 "
      "--out {run_foreign}", "not a training checkpoint"),
    C("train-checkpoint-folder", "train --method erm --source embedded --n-train 100 "
      "--out {run_folder}", "is a folder"),
    C("train-features-garbage", "train --method genint-transfer --source embedded "
      "--n-train 100 --generator tiny --gen-per-class 2 --transfer-n 4 "
      "--features resnet18:{garbage} --out {out}", "is not a torch file"),
    C("train-precision", "train --method erm --source embedded --n-train 100 "
      "--precision fp8 --out {out}", "fp8"),
    C("train-steps-0", "train --method erm --steps 0 --out {out}", "steps must be"),
    C("train-log-every-0", "train --method erm --log-every 0 --out {out}", "log_every"),
    C("train-model-unknown", "train --method erm --source embedded --n-train 100 "
      "--model nope --out {out}", "unknown model 'nope'"),
    C("train-data-unknown", "train --method erm --data purple-mnist --out {out}",
      "purple-mnist"),
    C("train-cf-data-csv", "train --method cgn --source embedded --n-train 100 "
      "--cf-data {csv_ok} --out {out}", "counterfactual"),
    C("train-method-unknown", "train --method no-such --source embedded --out {out}",
      "no-such"),
    C("train-int-data-label", "train --method genint --source embedded --n-train 100 "
      "--int-data {gen_bad_label} --out {out}", "label"),
    # ---- train on disk data (--data imagefolder:DIR | webdataset:PATTERN)
    C("train-imagefolder-missing", "train --method erm --data imagefolder:{missing} "
      "--out {out}", "does not exist"),
    C("train-data-prefix-unknown", "train --method erm --data tarball:{folder} --out {out}",
      "unknown --data source 'tarball:'"),
    C("train-imagefolder-one-class", "train --method erm --data imagefolder:{flat} "
      "--out {out}", "holds one class"),
    C("train-imagefolder-no-classes", "train --method erm --data imagefolder:{folder} "
      "--out {out}", "has no class subfolders"),
    C("train-val-prefix", "train --method erm --data imagefolder:{two_class} --val {folder} "
      "--out {out}", "is not imagefolder:DIR"),
    C("train-genint-disk-no-int", "train --method genint --data imagefolder:{two_class} "
      "--out {out}", "needs --int-data DIR"),
    C("train-milestones-text", "train --method erm --schedule multistep --milestones 3,x "
      "--out {out}", "is not comma-separated numbers"),
    C("train-optimizer-unknown", "train --method erm --optimizer lamb --out {out}",
      "unknown optimizer 'lamb'"),
    # ---- evaluate: trained-model folders (model.json + model.pt)
    C("evaluate-not-model-folder", "evaluate --model {folder}", "not a trained-model"),
    C("evaluate-json-binary", "evaluate --model {m_json_binary}", "is not text"),
    C("evaluate-json-invalid", "evaluate --model {m_json_text}", "is not valid JSON"),
    C("evaluate-json-incomplete", "evaluate --model {m_json_incomplete}", "lacks 'heads'"),
    C("evaluate-json-malformed", "evaluate --model {m_json_malformed}", "is malformed"),
    C("evaluate-json-model-unknown", "evaluate --model {m_json_model}", "no-such-net"),
    C("evaluate-pt-garbage", "evaluate --model {m_pt_garbage}", "is not a torch file"),
    C("evaluate-pt-truncated", "evaluate --model {m_pt_truncated}", "truncated or corrupt"),
    C("evaluate-pt-pickled", "evaluate --model {m_pt_pickled}", "refuses to unpickle"),
    C("evaluate-pt-keys", "evaluate --model {m_pt_shape}", "missing keys"),
    C("evaluate-data-label", "evaluate --model {model_ok} --data {gen_bad_label}",
      "label"),
    C("evaluate-data-corrupt-png", "evaluate --model {model_ok} --data {gen_bad_png}",
      "000001.png"),
    # ---- evaluate --benchmark: ImageNet classifiers on benchmark folders
    C("bench-unknown", "evaluate --model {ts_ok} --benchmark nope --root {inc_ok}",
      "unknown benchmark 'nope'"),
    C("bench-mnist-only", "evaluate --model {ts_ok} --benchmark by-nuisance --root {inc_ok}",
      "scores MNIST models"),
    C("bench-no-root", "evaluate --model {ts_ok} --benchmark imagenet-c", "no data folder"),
    C("bench-root-missing", "evaluate --model {ts_ok} --benchmark imagenet-c "
      "--root {missing}", "the folder does not exist"),
    C("bench-root-name", "evaluate --model {ts_ok} --benchmark imagenet-c --benchmark in9 "
      "--root xx={inc_ok}", "use --root NAME=DIR"),
    C("bench-c-layout", "evaluate --model {ts_ok} --benchmark imagenet-c --root {flat}",
      "holds no ImageNet-C corruption folders"),
    C("bench-c-severity-missing", "evaluate --model {ts_ok} --benchmark imagenet-c "
      "--root {inc_sev2} --severity 1", "gaussian_noise/1 is missing"),
    C("bench-c-severity-range", "evaluate --model {ts_ok} --benchmark imagenet-c "
      "--root {inc_ok} --severity 9", "severities must be in 1..5"),
    C("bench-c-class-folder", "evaluate --model {ts_ok} --benchmark imagenet-c "
      "--root {inc_badclass} --severity 1", "must be ImageNet WordNet ids"),
    C("bench-c-truncated-image", "evaluate --model {ts_ok} --benchmark imagenet-c "
      "--root {inc_trunc} --severity 1 --workers 0", "b.png is not a readable image"),
    C("bench-in9-layout", "evaluate --model {ts_ok} --benchmark in9 --root {flat}",
      "holds none of the IN-9 variations"),
    C("bench-in9-empty-class", "evaluate --model {ts_ok} --benchmark in9 --root {in9_empty}",
      "holds no images"),
    C("bench-v2-layout", "evaluate --model {ts_ok} --benchmark imagenet-v2 --root {flat}",
      "class indices 0..999"),
    C("bench-a-layout", "evaluate --model {ts_ok} --benchmark imagenet-a --root {flat}",
      "must be ImageNet WordNet ids"),
    C("bench-objectnet-layout", "evaluate --model {ts_ok} --benchmark objectnet "
      "--root {flat}", "none of ObjectNet's 113"),
    C("bench-shape-layout", "evaluate --model {ts_ok} --benchmark shape-bias --root {flat}",
      "not the 16 cue-conflict categories"),
    C("bench-out-is-file", "evaluate --model {ts_ok} --benchmark imagenet-c --root {inc_ok} "
      "--severity 1 --out {afile}", "is an existing file"),
    C("bench-cuda", "evaluate --model {ts_ok} --benchmark imagenet-c --root {inc_ok} "
      "--device cuda", "CUDA is not"),
    C("bench-model-unknown", "evaluate --model no-such-net --benchmark imagenet-c "
      "--root {inc_ok}", "unknown model 'no-such-net'"),
    C("bench-model-ts-missing", "evaluate --model {missing}.ts --benchmark imagenet-c "
      "--root {inc_ok}", "does not exist"),
    C("bench-model-ts-garbage", "evaluate --model {garbage_ts} --benchmark imagenet-c "
      "--root {inc_ok}", "is not a TorchScript file"),
    C("bench-model-ts-pickled", "evaluate --model {pickled} --benchmark imagenet-c "
      "--root {inc_ok}", "is not a TorchScript file"),
    C("bench-resnet-missing", "evaluate --model resnet18:{missing}.pth --benchmark "
      "imagenet-c --root {inc_ok}", "no such file"),
    C("bench-resnet-not-torch", "evaluate --model resnet18:{garbage} --benchmark imagenet-c "
      "--root {inc_ok}", "is not a torch file"),
    C("bench-resnet-pickled", "evaluate --model resnet18:{pickled} --benchmark imagenet-c "
      "--root {inc_ok}", "refuses to unpickle"),
    C("bench-resnet-shape", "evaluate --model resnet18:{state_ok} --benchmark imagenet-c "
      "--root {inc_ok}", "do not match the model"),
    C("bench-head-single", "evaluate --model {ts_ok} --benchmark imagenet-c --root {inc_ok} "
      "--severity 1 --workers 0 --head shape", "this classifier has a single output"),
    # ---- typer's own usage errors, one line like causalkit's
    C("usage-unknown-option", "evaluate --model {ts_ok} --nope", "No such option: --nope"),
    C("usage-missing-option", "evaluate", "Missing option '--model'"),
    C("usage-bad-integer", "generate -g tiny -n x --out {out}", "Invalid value for"),
    C("usage-unknown-command", "fly", "No such command 'fly'"),
    # ---- reproduce: CGN weights and configs
    C("reproduce-cgn-garbage", "reproduce cgn-mnist --quick --cgn {garbage} --out {out}",
      "is not a torch file"),
    C("reproduce-cgn-truncated", "reproduce cgn-mnist --quick --cgn {truncated} "
      "--out {out}", "truncated or corrupt"),
    C("reproduce-cgn-pickled", "reproduce cgn-mnist --quick --cgn {pickled} --out {out}",
      "refuses to unpickle"),
    C("reproduce-cgn-foreign", "reproduce cgn-mnist --quick --cgn {state_ok} --out {out}",
      "holds no CGN state_dict"),
    C("reproduce-cgn-shape", "reproduce cgn-mnist --quick --cgn {cgn_shape} --out {out}",
      "do not match the MNIST CGN"),
    C("reproduce-cgn-missing", "reproduce cgn-mnist --quick --cgn {missing} --out {out}",
      "is neither 'train', 'official' nor"),
    C("reproduce-official-missing", "reproduce cgn-mnist --quick --cgn official "
      "--official-root {folder} --out {out}", "official CGN checkpoints were not found"),
    C("reproduce-official-garbage", "reproduce cgn-mnist --quick --cgn official "
      "--official-root {official_bad} --out {out}", "is not a torch file"),
    C("reproduce-config-binary", "reproduce cgn-mnist --quick --config {garbage} "
      "--out {out}", "is not text"),
    C("reproduce-config-yaml", "reproduce cgn-mnist --quick --config {yaml_bad} "
      "--out {out}", "is not valid YAML"),
    C("reproduce-config-key", "reproduce cgn-mnist --quick --config {yaml_key} "
      "--out {out}", "unknown setting"),
    C("reproduce-variant-unknown", "reproduce cgn-mnist --variant purple --quick "
      "--out {out}", "purple"),
    # ---- reproduce cgn-imagenet (the ImageNet CGN pipeline, one stage at a time)
    C("imagenet-out-is-file", "reproduce cgn-imagenet --stage train-cgn --preset tiny "
      "--out {afile}", "is an existing file"),
    C("imagenet-out-unwritable", "reproduce cgn-imagenet --stage train-cgn --preset tiny "
      "--out /proc/x", "is not writable"),
    C("imagenet-cuda", "reproduce cgn-imagenet --stage train-cgn --preset tiny --out {out} "
      "--device cuda", "CUDA is not"),
    C("imagenet-stage-unknown", "reproduce cgn-imagenet --stage fly --preset tiny "
      "--out {out}", "unknown --stage 'fly'"),
    C("imagenet-preset-unknown", "reproduce cgn-imagenet --stage train-cgn --preset nope "
      "--out {out}", "unknown preset 'nope'"),
    C("imagenet-classes", "reproduce cgn-imagenet --stage generate --preset tiny "
      "--classes 1,x --out {out}", "is not three comma-separated class ids"),
    C("imagenet-root-pair", "reproduce cgn-imagenet --stage evaluate --preset tiny "
      "--root in9 --out {out}", "is not NAME=DIR"),
    C("imagenet-config-binary", "reproduce cgn-imagenet --stage train-cgn --preset tiny "
      "--config {garbage} --out {out}", "is not text"),
    C("imagenet-real-root-missing", "reproduce cgn-imagenet --stage train-classifier "
      "--preset tiny --out {out}", "needs real images"),
    # ---- reproduce genint-imagenet (GenInt on ImageNet, one stage at a time)
    C("genint-in-stage-unknown", "reproduce genint-imagenet --stage fly --config tiny "
      "--out {out}", "unknown --stage 'fly'"),
    C("genint-in-config-unknown", "reproduce genint-imagenet --stage train --config nope "
      "--out {out}", "is neither a preset"),
    C("genint-in-config-binary", "reproduce genint-imagenet --stage train --config {garbage} "
      "--out {out}", "is not text"),
    C("genint-in-no-train-data", "reproduce genint-imagenet --stage train --config paper "
      "--out {out}", "needs real images: set data.train"),
    C("genint-in-source", "reproduce genint-imagenet --stage generate --config tiny "
      "--source somewhere --out {out}", "interventions.source must be one of"),
    C("genint-in-method", "reproduce genint-imagenet --stage train --config tiny "
      "--method bogus --out {out}", "must name methods of"),
    C("genint-in-root-pair", "reproduce genint-imagenet --stage evaluate --config tiny "
      "--root objectnet --out {out}", "is not NAME=DIR"),
    C("genint-in-worker", "reproduce genint-imagenet --stage generate --config tiny "
      "--shard-worker 3 --shard-workers 2 --out {out}", "worker 3 of 2 is impossible"),
    C("genint-in-data-spec", "reproduce genint-imagenet --stage train --config tiny "
      "--train-data folder:/x --out {out}", "cannot read the data spec"),
    C("genint-in-strategy", "reproduce genint-imagenet --stage generate --config tiny "
      "--strategy k=zz --out {out}", "is not a number"),
    C("genint-in-out-is-file", "reproduce genint-imagenet --stage directions --config tiny "
      "--out {afile}", "is an existing file"),
    C("genint-in-cuda", "reproduce genint-imagenet --stage train --config tiny --out {out} "
      "--device cuda", "CUDA is not"),
    # ---- graphs (engineer A's command; rows that pass already)
    C("graph-binary-dagitty", "graph check {garbage_dagitty}", "not text"),
    C("graph-binary-json", "graph check {garbage_json}", "not text"),
    C("graph-missing", "graph check {missing}", "does-not-exist"),
]


# ------------------------------------------------------------------------ stand-in files
def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _idx(array: np.ndarray) -> bytes:
    code = 0x08
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d)
                                                        for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_dir(root: Path, name: str, size: int = 28, n: int = 20, cut: bool = False,
               labels_n: int | None = None) -> Path:
    folder = root / name
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n)):
        images = _idx(rng.integers(0, 255, (count, size, size)))
        if cut:
            images = images[:-7]
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        labels = rng.integers(0, 10, labels_n if labels_n is not None else count)
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels))
    return folder


def _write_csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    from generators.small_gan import SmallGANConfig, SmallGANNet, save_small_gan
    from robust_training.engine import save_model
    from robust_training.models import build_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    good = _torch_bytes({"weight": torch.randn(64, 64)})
    pickled = _torch_bytes(torch.nn.Linear(2, 2))
    f: dict[str, str] = {}

    def put(name: str, data: bytes) -> str:
        path = root / name
        path.write_bytes(data)
        f[name.split(".")[0]] = str(path)
        return str(path)

    put("garbage.bin", garbage)
    put("text.txt", b"hello, this is not a checkpoint\n")
    put("empty.pt", b"")
    put("truncated.pt", good[: len(good) // 2])
    put("pickled.pt", pickled)
    put("state_ok.pt", good)
    put("afile.txt", b"a file where a folder belongs\n")
    put("garbage_dagitty.dagitty", garbage)
    put("garbage_json.json", garbage)
    put("yaml_bad.yaml", b"model: [1\n")
    put("yaml_key.yaml", b"no_such_setting: 1\n")
    from generators.cgn.mnist.model import MnistCGN

    cgn_state = MnistCGN(ngf=4).state_dict()
    cgn_state.pop(sorted(cgn_state)[-1])
    put("cgn_shape.pt", _torch_bytes(cgn_state))
    for name in ("colored_mnist", "double_colored_mnist", "wildlife_mnist"):
        (root / "official_bad" / name).mkdir(parents=True)
        (root / "official_bad" / name / "ckp.pth").write_bytes(garbage)
    f["official_bad"] = str(root / "official_bad")
    f["missing"] = str(root / "does-not-exist")
    (root / "folder").mkdir()
    f["folder"] = str(root / "folder")

    f["csv_ok"] = _write_csv(root / "ok.csv", "X,Y\n0,1\n1,0\n1,1\n0,0\n")
    f["csv_nan"] = _write_csv(root / "nan.csv", "X,Y\n0,1\nnan,0\n1,1\n")
    f["csv_blank"] = _write_csv(root / "blank.csv", "X,Y\n0,1\n,0\n1,1\n")
    f["csv_ragged"] = _write_csv(root / "ragged.csv", "X,Y\n0,1\n1\n")
    f["csv_count_text"] = _write_csv(root / "ct.csv", "X,Y,count\n0,1,three\n1,0,2\n")
    f["csv_count_neg"] = _write_csv(root / "cn.csv", "X,Y,count\n0,1,-3\n1,0,2\n")
    f["csv_count_zero"] = _write_csv(root / "cz.csv", "X,Y,count\n0,1,0\n1,0,0\n")
    f["csv_prob_sum"] = _write_csv(root / "ps.csv", "X,Y,p\n0,1,0.5\n1,0,0.7\n")

    # small-GAN folders: one good, then one fault each
    net = SmallGANNet(SmallGANConfig(z_dim=8, ngf=4, emb_dim=4))
    sg_ok = save_small_gan(net, root / "sg_ok")
    cfg = json.loads((sg_ok / "config.json").read_text())
    weights = (sg_ok / "generator.pt").read_bytes()

    def small(name: str, config: bytes | None = None, weights_bytes: bytes | None = None):
        folder = root / name
        folder.mkdir()
        (folder / "config.json").write_bytes(config if config is not None
                                             else json.dumps(cfg).encode())
        (folder / "generator.pt").write_bytes(weights_bytes if weights_bytes is not None
                                              else weights)
        f[name] = str(folder)

    small("sg_config_binary", config=garbage)
    small("sg_config_text", config=b"{model: small-gan")
    small("sg_config_list", config=b"[1, 2]")
    small("sg_config_key", config=json.dumps({**cfg, "depth": 3}).encode())
    small("sg_config_value", config=json.dumps({**cfg, "ngf": "four"}).encode())
    small("sg_w_garbage", weights_bytes=garbage)
    small("sg_w_empty", weights_bytes=b"")
    small("sg_w_truncated", weights_bytes=weights[: len(weights) // 2])
    small("sg_w_pickled", weights_bytes=pickled)
    small("sg_w_list", weights_bytes=_torch_bytes([torch.zeros(2)]))
    small("sg_w_shape", config=json.dumps({**cfg, "ngf": 8}).encode())
    state = torch.load(io.BytesIO(weights), weights_only=True)
    state.pop(sorted(state)[0])
    small("sg_w_keys", weights_bytes=_torch_bytes(state))

    # BigGAN folders
    from generators.biggan import save_biggan, tiny_biggan

    bg_ok = save_biggan(tiny_biggan(0), root / "bg_ok")
    bg_files = {p.name: p.read_bytes() for p in bg_ok.iterdir()}
    config_name = next(n for n in bg_files if n.endswith(".json"))
    bg_cfg = json.loads(bg_files[config_name])

    def biggan(name: str, **replace: bytes):
        folder = root / name
        folder.mkdir()
        for n, data in bg_files.items():
            (folder / n).write_bytes(replace.get("config" if n == config_name
                                                 else "weights", data))
        f[name] = str(folder)

    biggan("bg_w_garbage", weights=garbage)
    biggan("bg_w_pickled", weights=pickled)
    biggan("bg_w_shape", config=json.dumps({**bg_cfg, "z_dim": bg_cfg["z_dim"] * 2})
           .encode())
    biggan("bg_config_text", config=b"{z_dim: 8")
    biggan("bg_config_binary", config=garbage)

    # trained-model folders for evaluate
    model = build_model("cnn", ("shape",), width=8)
    meta = {"model": "cnn", "width": 8, "heads": ["shape"], "predict_head": "shape"}
    ok = save_model(model, root / "model_ok", meta)
    f["model_ok"] = str(ok)
    pt = (ok / "model.pt").read_bytes()

    def trained(name: str, meta_bytes: bytes | None = None, pt_bytes: bytes | None = None):
        folder = root / name
        folder.mkdir()
        (folder / "model.json").write_bytes(meta_bytes if meta_bytes is not None
                                            else json.dumps(meta).encode())
        (folder / "model.pt").write_bytes(pt_bytes if pt_bytes is not None else pt)
        f[name] = str(folder)

    trained("m_json_binary", meta_bytes=garbage)
    trained("m_json_text", meta_bytes=b'{"model": "cnn", "heads": [')
    trained("m_json_incomplete", meta_bytes=json.dumps({"model": "cnn"}).encode())
    trained("m_json_malformed", meta_bytes=json.dumps({**meta, "heads": "shape"}).encode())
    trained("m_json_model", meta_bytes=json.dumps({**meta, "model": "no-such-net"}).encode())
    trained("m_pt_garbage", pt_bytes=garbage)
    trained("m_pt_truncated", pt_bytes=pt[: len(pt) // 3])
    trained("m_pt_pickled", pt_bytes=pickled)
    trained("m_pt_shape", meta_bytes=json.dumps({**meta, "heads": ["shape", "texture"]})
            .encode())

    # run folders whose checkpoint is not one
    for name, data in (("run_garbage", garbage), ("run_truncated", good[: len(good) // 2]),
                       ("run_pickled", pickled), ("run_foreign", good)):
        (root / name).mkdir()
        (root / name / "checkpoint.pt").write_bytes(data)
        f[name] = str(root / name)
    (root / "run_folder" / "checkpoint.pt").mkdir(parents=True)
    f["run_folder"] = str(root / "run_folder")

    # a generated folder whose labels.csv holds a non-integer label
    gen = root / "gen_bad_label"
    (gen / "0").mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(gen / "0" / "000000.png")
    (gen / "labels.csv").write_text("file,label\n0/000000.png,seven\n")
    f["gen_bad_label"] = str(gen)
    gen = root / "gen_bad_png"
    (gen / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(gen / "0" / "000000.png")
    png = (gen / "0" / "000000.png").read_bytes()
    (gen / "0" / "000001.png").write_bytes(png[: len(png) // 2])  # a corrupt PNG
    (gen / "labels.csv").write_text("file,label\n0/000000.png,0\n0/000001.png,0\n")
    f["gen_bad_png"] = str(gen)

    # ImageNet benchmark folders and a TorchScript classifier for evaluate --benchmark
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean(dim=(2, 3)))

    torch.jit.save(torch.jit.script(Tiny()), str(root / "ts_ok.ts"))
    f["ts_ok"] = str(root / "ts_ok.ts")
    put("garbage_ts.ts", garbage)

    def image(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)

    for name, rel in (("inc_ok", "gaussian_noise/1/n01440764"),
                      ("inc_sev2", "gaussian_noise/2/n01440764"),
                      ("inc_badclass", "gaussian_noise/1/fish"),
                      ("inc_trunc", "gaussian_noise/1/n01440764"), ("flat", "x")):
        image(root / name / rel / "a.png")
        f[name] = str(root / name)
    for rel in ("two_class/a/x.png", "two_class/b/x.png"):  # an ImageFolder of two classes
        image(root / rel)
    f["two_class"] = str(root / "two_class")
    cut = root / "inc_trunc" / "gaussian_noise/1/n01440764"
    (cut / "b.png").write_bytes((cut / "a.png").read_bytes()[:40])
    (root / "in9_empty" / "original" / "val" / "00_dog").mkdir(parents=True)
    f["in9_empty"] = str(root / "in9_empty")

    f["mnist27"] = str(_mnist_dir(root, "mnist27", size=27))
    f["mnist_trunc"] = str(_mnist_dir(root, "mnist_trunc", cut=True))
    f["mnist_count"] = str(_mnist_dir(root, "mnist_count", labels_n=5))
    f["_root"] = str(root)
    return f


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    # every path; for files their size and modification time too
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            if p.is_file() else (0, 0) for p in folder.rglob("*")}


def test_matrix_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    commands = {c.argv[0] for c in CASES}
    assert {"generate", "bound", "data", "probe-correlation", "train", "evaluate",
            "reproduce", "graph"} <= commands
    assert {c.argv[1] for c in CASES if c.argv[0] == "reproduce"} == {
        "cgn-mnist", "cgn-imagenet", "genint-imagenet"}
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(
    reason=c.xfail, strict=False)] if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, files, tmp_path, monkeypatch):
    if case.fragment == "CUDA is not" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("CAUSALKIT_OFFLINE", "1")
    monkeypatch.delenv("CAUSALKIT_MNIST", raising=False)
    out = tmp_path / "out"
    argv = [a.format(out=out, **files) for a in case.argv]
    root = Path(files["_root"])
    before = _snapshot(root)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, argv)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (argv, result.output, result.exception)
    # the error is one line, the last; status lines ("warning: source ...") may precede it
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert errors[0].startswith("error: ") and case.fragment in errors[0], errors[0]
    assert "Traceback" not in result.output
    # nothing written: no output folder, nothing new or rewritten among the inputs,
    # nothing in the working directory
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert _snapshot(root) == before
    assert not any(cwd.iterdir()), list(cwd.iterdir())
    assert not os.path.exists("/proc/causalkit-out")


def test_skip_corrupt_scores_the_rest(files, tmp_path):
    # the truncated image that stops bench-c-truncated-image is counted and skipped
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "--model", files["ts_ok"], "--benchmark",
                                 "imagenet-c", "--root", files["inc_trunc"], "--severity", "1",
                                 "--workers", "0", "--skip-corrupt", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable image(s)" in result.stderr
    report = json.loads((out / "evaluate.json").read_text())
    assert report["results"]["imagenet-c"]["skipped"] == 1
