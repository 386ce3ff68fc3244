#!/usr/bin/env python3
"""Writes tests/data/python_fixture.safetensors with the reference Python safetensors package.

tests/engine/safetensors_test.cc reads it and checks every value exactly, so the C++ reader is tested
against files the real library writes (layout, padding, dtype names, metadata). Needs torch and
safetensors (present on the GPU machine). Keep the tensors here and the expectations in the test in step.

    python3 scripts/make-safetensors-fixture.py [OUT]           # default OUT: tests/data/python_fixture.safetensors
    python3 scripts/make-safetensors-fixture.py --verify F...   # load files (e.g. written by the C++ writer) and print them
"""
import json
import os
import struct
import sys

import torch
from safetensors.torch import load_file, save_file


def fixture_tensors():
    return {
        "f32": torch.tensor([[0.0, -1.5, 2.25], [1e-3, 3.4028234663852886e38, -0.0]], dtype=torch.float32),
        "f16": torch.tensor([1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -0.15625, 256.0, 2.0**-20, 3.0e38], dtype=torch.bfloat16),
        "f64": torch.tensor([3.141592653589793, -1e300, 5e-324], dtype=torch.float64),
        "i64": torch.tensor([-(2**63), -1, 2**63 - 1], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-32768, 12345, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([[0, 1], [128, 255]], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "matrix": torch.arange(12, dtype=torch.int64).reshape(3, 4),
    }


FIXTURE_METADATA = {"format": "pt", "producer": "make-safetensors-fixture.py", "note": "\u00fcn\u00efcode \u2713"}


def header_of(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
    return n, raw


def describe(path):
    n, raw = header_of(path)
    print(f"{path}: {os.path.getsize(path)} bytes, header {n} bytes (padded to 8: {n % 8 == 0})")
    print("header:", raw.decode("utf-8"))
    meta = json.loads(raw).get("__metadata__")
    if meta is not None:
        print("metadata:", meta)
    for name, t in sorted(load_file(path).items()):
        print(f"  {name}: {t.dtype} {list(t.shape)} {t.flatten().tolist()}")


def main(argv):
    if len(argv) > 1 and argv[1] == "--verify":
        for path in argv[2:]:
            describe(path)
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    out = argv[1] if len(argv) > 1 else os.path.join(here, "..", "tests", "data", "python_fixture.safetensors")
    out = os.path.normpath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tensors = fixture_tensors()
    save_file(tensors, out, metadata=FIXTURE_METADATA)
    back = load_file(out)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name
    print(f"wrote {out} with torch {torch.__version__}")
    describe(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
